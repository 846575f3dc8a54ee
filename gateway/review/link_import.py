"""Patient links imported from CSV: `pacs_patient_id,issuer,r4_patient_id`, header required.

Rows are judged one by one (a bad row does not stop the good ones), the file as a whole only
when it cannot be read as that table (wrong header, not UTF-8 text, no rows): then nothing is
imported. Reasons name the problem, never the row's values, so a report can be shown or logged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from gateway.review.actions import PatientLookup, check_r4_patient
from gateway.review.audit import AuditAction, AuditLog, link_subject
from gateway.review.errors import InvalidLinkFile, LinkConflict, UnknownR4Patient
from gateway.review.links import PatientLinks, audit_view, link_field_problem
from gateway.review.transactions import in_transaction

HEADER = ("pacs_patient_id", "issuer", "r4_patient_id")
# The API's body limit keeps files far below this; other callers get the same ceiling.
MAX_ROWS = 10_000
_DELIMITERS = ",;\t"  # spreadsheets in many locales save CSV with semicolons


class RowOutcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ImportRow:
    row: int  # the file's line number (the header is line 1)
    outcome: RowOutcome
    link_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ImportReport:
    rows: tuple[ImportRow, ...]

    def _count(self, outcome: RowOutcome) -> int:
        return sum(1 for r in self.rows if r.outcome is outcome)

    @property
    def created(self) -> int:
        return self._count(RowOutcome.CREATED)

    @property
    def unchanged(self) -> int:
        return self._count(RowOutcome.UNCHANGED)

    @property
    def rejected(self) -> int:
        return self._count(RowOutcome.REJECTED)


@dataclass(frozen=True)
class _Wanted:
    row: int
    pacs_patient_id: str
    issuer: str
    r4_patient_id: int


def import_links(
    links: PatientLinks,
    audit: AuditLog,
    patients: PatientLookup,
    data: bytes,
    actor: str,
) -> ImportReport:
    """Create the file's links; each new one is audited as `link.import`.

    Raises InvalidLinkFile (nothing imported) and R4Unavailable (nothing imported)."""
    wanted, judged = _parse(_text(data))
    known: dict[int, bool] = {}
    checked: list[_Wanted] = []
    for want in wanted:
        if want.r4_patient_id not in known:
            try:
                check_r4_patient(patients, want.r4_patient_id)
                known[want.r4_patient_id] = True
            except UnknownR4Patient:
                known[want.r4_patient_id] = False
        if known[want.r4_patient_id]:
            checked.append(want)
        else:
            judged.append(_rejected(want.row, "no R4 patient has this id"))

    def store(conn: sa.Connection) -> list[ImportRow]:
        outcomes = []
        for want in checked:
            try:
                link, created = links.link(
                    want.pacs_patient_id,
                    want.issuer,
                    want.r4_patient_id,
                    actor=actor,
                    source="import",
                    conn=conn,
                )
            except LinkConflict as exc:
                outcomes.append(
                    _rejected(
                        want.row,
                        f"this PACS patient id is already linked to another R4 patient "
                        f"(link {exc.link_id})",
                    )
                )
                continue
            if created:
                audit.record(
                    actor,
                    AuditAction.LINK_IMPORT,
                    link_subject(link.id),
                    None,
                    audit_view(link),
                    conn=conn,
                )
            outcome = RowOutcome.CREATED if created else RowOutcome.UNCHANGED
            outcomes.append(ImportRow(want.row, outcome, link_id=link.id))
        return outcomes

    stored = in_transaction(links.engine, store)
    return ImportReport(tuple(sorted([*judged, *stored], key=lambda r: r.row)))


def _text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError:
        raise InvalidLinkFile(
            "The file is not UTF-8 text; save it as 'CSV UTF-8' and send it again. "
            "Nothing was imported."
        ) from None
    if "\x00" in text:
        raise InvalidLinkFile("The file contains NUL characters, so it is not CSV text.")
    return text


def _parse(text: str) -> tuple[list[_Wanted], list[ImportRow]]:
    """The rows to store, and the rows already judged (rejected, or repeats in the file)."""
    lines = text.splitlines()
    first = lines[0] if lines else ""
    delimiter = next((d for d in _DELIMITERS if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records = _records(reader)
    header = next(records, None)
    if header is None or tuple(c.strip().lower() for c in header[1]) != HEADER:
        raise InvalidLinkFile(
            f"The first line must be the header '{','.join(HEADER)}'; nothing was imported."
        )
    wanted: list[_Wanted] = []
    judged: list[ImportRow] = []
    seen: dict[tuple[str, str], _Wanted] = {}
    for row, fields in records:
        if len(wanted) + len(judged) >= MAX_ROWS:
            raise InvalidLinkFile(
                f"The file has more than {MAX_ROWS} rows; split it. Nothing was imported."
            )
        parsed = _row(row, fields)
        if isinstance(parsed, ImportRow):
            judged.append(parsed)
            continue
        key = (parsed.pacs_patient_id, parsed.issuer)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = parsed
            wanted.append(parsed)
        elif earlier.r4_patient_id == parsed.r4_patient_id:
            judged.append(
                ImportRow(row, RowOutcome.UNCHANGED, reason=f"the same link as line {earlier.row}")
            )
        else:
            judged.append(
                _rejected(
                    row, f"line {earlier.row} links this PACS patient id to another R4 patient"
                )
            )
    if not wanted and not judged:
        raise InvalidLinkFile("The file has a header but no rows; nothing was imported.")
    return wanted, judged


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank record (`reader`: a csv.reader)."""
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                yield reader.line_num, fields
    except csv.Error:
        raise InvalidLinkFile(
            f"The file is not valid CSV (near line {reader.line_num}); nothing was imported."
        ) from None


def _row(row: int, fields: list[str]) -> _Wanted | ImportRow:
    if len(fields) != len(HEADER):
        return _rejected(row, f"expected {len(HEADER)} columns, found {len(fields)}")
    pacs_patient_id, issuer, r4_text = (f.strip() for f in fields)
    if not r4_text.isascii() or not r4_text.isdigit():
        return _rejected(row, "the R4 patient id is not a whole number")
    r4_patient_id = int(r4_text) if len(r4_text) <= 12 else 0
    problem = link_field_problem(pacs_patient_id, issuer, r4_patient_id)
    if problem:
        return _rejected(row, problem)
    return _Wanted(row, pacs_patient_id, issuer, r4_patient_id)


def _rejected(row: int, reason: str) -> ImportRow:
    return ImportRow(row, RowOutcome.REJECTED, reason=reason)
