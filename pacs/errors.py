"""Typed, readable DICOM errors.

Each error says in one sentence what happened, names the PACS (never the patient) and
tells the job layer whether trying again later can help (`transient`).
"""

from __future__ import annotations

from pynetdicom.status import (
    QR_FIND_SERVICE_CLASS_STATUS,
    QR_GET_SERVICE_CLASS_STATUS,
    QR_MOVE_SERVICE_CLASS_STATUS,
)


class PacsError(Exception):
    """Base of every error the `pacs` package raises."""

    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PacsUnreachable(PacsError):
    """No association could be opened: connection refused, no answer, or aborted at once."""

    transient = True


class AssociationRejected(PacsError):
    """The PACS answered and said no (A-ASSOCIATE-RJ)."""

    def __init__(self, message: str, *, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason


class TlsRefused(PacsError):
    """No TLS connection with the PACS: a certificate, a CA or a port to fix, by a person.
    Trying again unchanged will not help."""


class AssociationAborted(PacsError):
    """The association broke in the middle of an operation."""

    transient = True


class IdleTimeout(AssociationAborted):
    """The PACS went silent for longer than the configured idle time."""


class TooManyMatches(PacsError):
    """A C-FIND answered more matches than the configured cap: asking the same again will
    answer the same, so only a narrower query helps."""


class DimseFailure(PacsError):
    """The PACS answered a C-FIND, C-MOVE or C-GET with a failure status."""

    def __init__(self, message: str, *, status: int, meaning: str, transient: bool) -> None:
        super().__init__(message)
        self.status = status
        self.meaning = meaning
        self.transient = transient


class MoveDestinationUnknown(DimseFailure):
    """The PACS does not know our AE title as a move destination: a configuration fix."""


class RetrieveIncomplete(PacsError):
    """The retrieve ended but some instances the PACS lists never arrived."""

    transient = True

    def __init__(self, message: str, *, missing: int, expected: int) -> None:
        super().__init__(message)
        self.missing = missing
        self.expected = expected


class OwnStoreRefused(RetrieveIncomplete):
    """Images arrived, but the gateway's own disk would not take them (full, not writable):
    not the PACS's fault. Trying again helps once there is room."""


class SubOperationsFailed(PacsError):
    """The PACS would not send some images in any way we offered: a configuration matter
    (a transfer syntax it cannot convert, a storage class not proposed), not a passing fault."""

    def __init__(self, message: str, *, missing: int, expected: int) -> None:
        super().__init__(message)
        self.missing = missing
        self.expected = expected


class RetrieveCancelled(PacsError):
    """Someone asked to stop; the association was aborted on purpose."""


_TABLES = {
    "C-FIND": QR_FIND_SERVICE_CLASS_STATUS,
    "C-MOVE": QR_MOVE_SERVICE_CLASS_STATUS,
    "C-GET": QR_GET_SERVICE_CLASS_STATUS,
}

# Out of resources and general processing failures may clear by themselves; the rest
# (bad identifier, unknown destination, SOP class refused) will fail the same way again.
_TRANSIENT_STATUSES = {0xA700, 0xA701, 0xA702, 0xC000, 0xC001, 0x0213, 0x0212}


def status_meaning(operation: str, status: int) -> str:
    entry = _TABLES.get(operation, {}).get(status)
    if entry:
        return entry[1]
    if 0xA700 <= status <= 0xA7FF:
        return "Refused: out of resources"
    if 0xC000 <= status <= 0xCFFF:
        return "Unable to process"
    return "Unknown status"


def dimse_failure(operation: str, status: int, pacs: str, comment: str = "") -> DimseFailure:
    """Build the error for a failure status, with the sentence a person reads."""
    meaning = status_meaning(operation, status)
    detail = f" ({comment})" if comment else ""
    message = f"The PACS {pacs} refused the {operation}: {meaning} (0x{status:04X}){detail}."
    transient = status in _TRANSIENT_STATUSES or 0xA700 <= status <= 0xA7FF
    return DimseFailure(message, status=status, meaning=meaning, transient=transient)


def move_destination_unknown(pacs: str, ae_title: str, status: int) -> MoveDestinationUnknown:
    message = (
        f"The PACS {pacs} does not know the gateway's AE title {ae_title}: "
        f"add it as a DICOM modality (with this host and port) on the PACS."
    )
    return MoveDestinationUnknown(
        message, status=status, meaning="Move destination unknown", transient=False
    )
