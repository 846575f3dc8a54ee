"""The first two steps of the decision order: explicit links and configured id rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class LinkLookup(Protocol):
    """Links made by staff (or imported): PACS (PatientID, IssuerOfPatientID) -> R4 patient id.

    The gateway backs this with a database table; the matcher only reads it.
    """

    def r4_patient_for(self, pacs_patient_id: str, issuer: str) -> int | None: ...


class InMemoryLinks:
    """A `LinkLookup` over a dict, for tests and tools.

    The key is the exact (PatientID, issuer) pair: a link made for one issuer says nothing
    about the same id from another issuer (field note 7: ids are not identities).
    """

    def __init__(self, links: Mapping[tuple[str, str], int] | None = None) -> None:
        self._links: dict[tuple[str, str], int] = {}
        for (patient_id, issuer), r4_id in (links or {}).items():
            self.add(patient_id, issuer, r4_id)

    def add(self, pacs_patient_id: str, issuer: str, r4_patient_id: int) -> None:
        self._links[(pacs_patient_id.strip(), issuer.strip())] = r4_patient_id

    def r4_patient_for(self, pacs_patient_id: str, issuer: str) -> int | None:
        return self._links.get((pacs_patient_id.strip(), issuer.strip()))

    def __len__(self) -> int:
        return len(self._links)


class NoLinks:
    """A `LinkLookup` that knows no links."""

    def r4_patient_for(self, pacs_patient_id: str, issuer: str) -> int | None:
        return None


def loose_id_key(value: str) -> str:
    """The coarsest form of an id the index files it under: trimmed, case-folded, no leading zeros.

    Every `IdRule` is at least this tolerant, so the index can answer any rule with one lookup
    and the rule then checks its own exact comparison on the few rows it gets back.
    """
    text = value.strip().casefold()
    return text.lstrip("0") or ("0" if text else "")


@dataclass(frozen=True)
class IdRule:
    """PACS id == R4 id, after the site's formatting conventions are undone.

    Example: PACS PatientID "R4-00012345" for chart number "12345" is
    `IdRule(prefix="R4-", pad_width=8)`. Prefix and suffix are removed when present; with
    `require_affixes` an id without them does not match (use when bare numbers in the PACS
    belong to someone else). Zero padding is compared by padding both sides to `pad_width`;
    `strip_leading_zeros` compares without any leading zeros.
    """

    name: str = "chart-number"
    prefix: str = ""
    suffix: str = ""
    require_affixes: bool = False
    pad_width: int | None = None
    strip_leading_zeros: bool = False
    case_insensitive: bool = True
    # Which PACS ids to try: PatientID always; OtherPatientIDs when set.
    use_pacs_other_ids: bool = False
    # Which R4 ids to compare with: the chart number and/or R4's other ids.
    match_chart_number: bool = True
    match_r4_other_ids: bool = False
    # When non-empty, the rule only applies to PACS ids from these issuers ("" = no issuer).
    issuers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pad_width is not None and self.pad_width < 1:
            raise ValueError("pad_width must be positive")
        if not (self.match_chart_number or self.match_r4_other_ids):
            raise ValueError("an id rule must compare with the chart number or other ids")

    def applies_to_issuer(self, issuer: str) -> bool:
        return not self.issuers or issuer.strip() in self.issuers

    def _canonical(self, value: str) -> str:
        text = value.strip()
        if self.case_insensitive:
            text = text.casefold()
        if self.strip_leading_zeros:
            text = text.lstrip("0") or ("0" if text else "")
        if self.pad_width is not None:
            text = text.zfill(self.pad_width)
        return text

    def pacs_key(self, pacs_id: str) -> str | None:
        """The R4-comparable form of a PACS id, or None when the id cannot match this rule."""
        text = pacs_id.strip()
        if not text:
            return None
        fold = str.casefold if self.case_insensitive else str
        has_prefix = bool(self.prefix) and fold(text).startswith(fold(self.prefix))
        has_suffix = bool(self.suffix) and fold(text).endswith(fold(self.suffix))
        if self.require_affixes and (
            (self.prefix and not has_prefix) or (self.suffix and not has_suffix)
        ):
            return None
        if has_prefix:
            text = text[len(self.prefix) :]
        if has_suffix:
            text = text[: len(text) - len(self.suffix)]
        return self._canonical(text) if text.strip() else None

    def pacs_id(self, chart_number: str) -> str:
        """The PACS PatientID this rule expects for an R4 chart number (prefix, padding, suffix).

        Case is kept as R4 has it: C-FIND matches PatientID exactly.
        """
        text = chart_number.strip()
        if self.pad_width is not None:
            text = text.zfill(self.pad_width)
        return f"{self.prefix}{text}{self.suffix}"

    def r4_key(self, r4_id: str | None) -> str | None:
        if not r4_id or not r4_id.strip():
            return None
        return self._canonical(r4_id)

    def pacs_ids(self, patient_id: str, other_ids: Iterable[str]) -> tuple[str, ...]:
        ids = [patient_id]
        if self.use_pacs_other_ids:
            ids.extend(other_ids)
        return tuple(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
