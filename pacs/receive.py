"""Receiving C-STORE requests into the study store, for the Storage SCP and for C-GET alike.

pynetdicom is switched to chunked receive: each dataset streams to a temp file as it arrives
and is never decoded whole. We read only the few header tags we need, check the file is
complete, then link it into the store.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pynetdicom import _config, dimse_messages
from pynetdicom.association import ServiceUser
from pynetdicom.events import Event

from pacs.attributes import int_value
from pacs.header import Header, quick_header
from pacs.store import InvalidUID, Origin, Placement, StoredInstance, StudyStore, free_space

log = logging.getLogger(__name__)

STATUS_SUCCESS = 0x0000
# 0xCxxx "Cannot understand": the dataset could not be parsed or is incomplete.
STATUS_CANNOT_UNDERSTAND = 0xC210
# 0xA7xx "Out of resources": the disk is full or not writable; the sender may try again.
STATUS_OUT_OF_RESOURCES = 0xA700

_HEADER_TAGS = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]

InstanceListener = Callable[[StoredInstance], None]


@dataclass(frozen=True)
class Arrival:
    """What the store handler knows of an arriving file before it is placed."""

    header: Header
    calling_ae_title: str
    calling_address: str


# Decides how the store places an arrival, and what note goes with a file held back.
Classify = Callable[[Arrival], tuple[Origin, str]]


def pushed(arrival: Arrival) -> tuple[Origin, str]:
    """The classification of a sender nobody is waiting on: a push."""
    return Origin.PUSHED, "pushed; differs from the stored copy"


class MalformedDataset(ValueError):
    pass


class SpoolFile:
    """The temp file one arriving dataset streams into, which outlives our own disk failing.

    pynetdicom writes each P-DATA fragment to it inside the association's reader thread; an
    OSError there (disk full, no permission) would abort the association, and the PACS would
    report the whole C-MOVE as failed, as if its configuration were at fault. Here the first
    failure is kept in `error`, the partial file is deleted at once (giving its space back)
    and later fragments are dropped; the store handler then answers this one C-STORE with
    0xA700 and the association goes on. Offers what pynetdicom uses of a NamedTemporaryFile:
    `name`, `write`, `file.flush()`, `close()`.
    """

    def __init__(self, directory: Path, prefix: str, **_pynetdicom_options: object) -> None:
        self.error: OSError | None = None
        self._file: IO[bytes] | None = None
        try:
            handle, name = tempfile.mkstemp(suffix=".dcm", prefix=prefix, dir=directory)
        except OSError as exc:
            self.name = str(directory / f"{prefix}unwritable.dcm")  # never created
            self.error = exc
            return
        self.name = name
        self._file = os.fdopen(handle, "wb")

    @property
    def file(self) -> SpoolFile:
        return self

    def write(self, data: bytes) -> int:
        if self._file is not None:
            try:
                return self._file.write(data)
            except OSError as exc:
                self._fail(exc)
        return len(data)

    def flush(self) -> None:
        self._guarded("flush")

    def close(self) -> None:
        self._guarded("close")  # flushes what is buffered: may be the write that fails

    def _guarded(self, method: str) -> None:
        if self._file is not None:
            try:
                getattr(self._file, method)()
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc
        failed, self._file = self._file, None
        if failed is not None:
            with contextlib.suppress(OSError):
                failed.close()  # the fd is released even when the final flush fails
        Path(self.name).unlink(missing_ok=True)


def receive_into(store: StudyStore) -> None:
    """Stream incoming datasets to temp files under the store, so linking them is one step.

    pynetdicom creates the temp file with a module-level NamedTemporaryFile and no `dir`;
    we give it ours (a SpoolFile in `.incoming`) rather than changing the process-wide temp
    dir.
    """
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = functools.partial(  # type: ignore[attr-defined]
        SpoolFile, store.incoming, store.incoming_prefix()
    )


def store_handler(
    store: StudyStore,
    on_stored: InstanceListener,
    on_store_failed: Callable[[], None] | None = None,
    classify: Classify = pushed,
) -> Callable[[Event], int]:
    """An EVT_C_STORE handler that files the instance by what `classify` says of it and tells
    `on_stored` about it, or `on_store_failed` when our own disk refused it (the sender counts
    a failed sub-operation that is our fault, not the PACS's)."""

    def handle(event: Event) -> int:
        temp_path = Path(event.dataset_path)
        sender = _sender(event)
        calling = sender.ae_title
        # pynetdicom keeps its write handle open until the handler returns (its data is
        # flushed). On Windows an open file cannot be unlinked, so close it first; pynetdicom's
        # own close and unlink afterwards are then no-ops.
        written = getattr(event.request, "_dataset_file", None)
        if written is not None:
            written.close()
        try:
            if isinstance(written, SpoolFile) and written.error is not None:
                raise written.error
            stored = _file_instance(store, temp_path, event, sender, classify)
        except (MalformedDataset, InvalidUID) as exc:
            log.warning("Refused an instance from %s: %s", calling, exc)
            return STATUS_CANNOT_UNDERSTAND
        except OSError as exc:
            log.error(
                "Could not write a received instance to the store: %s (%s free there)",
                exc.strerror,
                free_space(store.root),
            )
            if on_store_failed is not None:
                on_store_failed()
            return STATUS_OUT_OF_RESOURCES
        finally:
            # pynetdicom leaves C-GET temp files behind; the store has linked what it keeps.
            temp_path.unlink(missing_ok=True)
        if stored.placement is Placement.HELD_BACK:
            log.warning(
                "Held back instance %s of study %s from %s at %s: never served",
                stored.sop_instance_uid,
                stored.study_uid,
                calling,
                stored.calling_address or "?",
            )
        on_stored(stored)
        return STATUS_SUCCESS

    return handle


def discard_partial(event: Event) -> None:
    """EVT_CONN_CLOSE handler: delete the temp file of a dataset cut off mid-transfer.

    pynetdicom keeps the message being received on `assoc.dimse.message` and never cleans
    its temp file up when the association aborts; without this, every aborted transfer
    would leave a partial file in `.incoming` until the next start.
    """
    message = getattr(event.assoc.dimse, "message", None)
    partial = getattr(message, "_data_set_file", None)
    if partial is not None:
        partial.close()
        Path(partial.name).unlink(missing_ok=True)


def _sender(event: Event) -> ServiceUser:
    """The peer that sent the C-STORE: whoever opened a Storage SCP's association, the PACS
    on a C-GET association we opened."""
    assoc = event.assoc
    return assoc.acceptor if assoc.is_requestor else assoc.requestor


def _file_instance(
    store: StudyStore, temp_path: Path, event: Event, sender: ServiceUser, classify: Classify
) -> StoredInstance:
    header = quick_header(temp_path) or _read_header(temp_path)
    sop = header.sop_instance_uid
    if sop != str(event.request.AffectedSOPInstanceUID or ""):
        raise MalformedDataset("the dataset's SOP Instance UID differs from the request's")
    target = store.path_for(header.study_uid, header.series_uid, sop)
    size = temp_path.stat().st_size
    calling = sender.ae_title
    address = str(sender.address or "")
    origin, why = classify(Arrival(header, calling, address))
    note = {
        "reason": why,
        "calling_ae_title": calling,
        "calling_address": address,
        "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    filed = store.accept(temp_path, target, origin, note)
    return StoredInstance(
        study_uid=header.study_uid,
        series_uid=header.series_uid,
        sop_instance_uid=sop,
        sop_class_uid=str(event.request.AffectedSOPClassUID or ""),
        transfer_syntax=str(event.context.transfer_syntax),
        path=target if filed.placement is not Placement.HELD_BACK else filed.held_path or target,
        size=size,
        new=filed.placement in (Placement.NEW, Placement.REPLACED),
        calling_ae_title=calling,
        number=header.instance_number,
        calling_address=address,
        placement=filed.placement,
        held_path=filed.held_path,
        solicited=origin is Origin.RETRIEVED,
    )


def _read_header(path: Path) -> Header:
    """Read the UIDs we file by with pydicom, and check the pixel data really ends inside the
    file: the judge for every file the quick walk (pacs/header.py) was not sure of.

    Large values are deferred, so this walks the element structure without loading pixels;
    a dataset whose lengths point past its end is refused instead of stored truncated.
    """
    try:
        ds = dcmread(path, defer_size=4096)
        elements = [
            ds.get_item(tag, keep_deferred=True)
            for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
        ]
        size = os.path.getsize(path)
        for element in elements:
            if (
                isinstance(element, RawDataElement)
                and element.length != 0xFFFFFFFF
                and element.value_tell + element.length > size
            ):
                raise MalformedDataset("the pixel data is longer than what arrived")
        for keyword in _HEADER_TAGS:
            if keyword not in ds:
                raise MalformedDataset(f"the dataset has no {keyword}")
        return Header(
            sop_class_uid=str(ds.SOPClassUID or ""),
            sop_instance_uid=str(ds.SOPInstanceUID or ""),
            study_uid=str(ds.StudyInstanceUID or ""),
            series_uid=str(ds.SeriesInstanceUID or ""),
            instance_number=int_value(ds.get("InstanceNumber")),
            patient_id=str(ds.get("PatientID", "") or ""),
            issuer_of_patient_id=str(ds.get("IssuerOfPatientID", "") or ""),
        )
    except MalformedDataset:
        raise
    except Exception as exc:  # pydicom raises a wide range of errors on garbage
        raise MalformedDataset(f"the dataset cannot be parsed ({type(exc).__name__})") from None
