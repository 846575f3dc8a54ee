"""Which of the PACS's studies a fetch for an R4 patient may bring home, and which need a person.

Queries, for one R4 patient on one PACS:
- every PACS id staff linked to the patient (`pacs_ids_for`), and the id the id rule derives
  from the chart number;
- with `match_by_demographics`, also PatientName + PatientBirthDate (DICOM PN wildcard
  matching, family name first and then given name first, for a PACS that swapped them).

Every study found is put to the matcher with the patient attributes the PACS answered:
- linked to this patient by an explicit link or the id rule: fetched;
- linked to another R4 patient by an explicit link or the id rule: theirs, left alone;
- anything else (the id rule contradicted by the demographics, ambiguous, or only similar
  demographics, even an automatic demographic match): the review queue, not fetched. A study
  found under an id that is not linked or ruled to this patient is never fetched until a
  person confirms whose it is; its item says so (`ReviewReason.FOUND_BY_NAME`). Nor is a
  study found under a linked id but from another issuer of patient ids than the link's: the
  link does not apply to it, so only the demographics could vouch for it
  (`ReviewReason.ISSUER_DIFFERS`).
The review queue keeps one open item per study, so running the same fetch again adds nothing;
a study a person resolved has its link by then and is fetched like any linked one, and a study
a person dismissed stays dismissed: neither fetched nor counted as awaiting review.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa

import jobs
from gateway.fetch.request import FetchTarget
from gateway.matching import (
    IdRule,
    LinkRule,
    MatchDecision,
    Matcher,
    ReviewReason,
    reason_sentence,
)
from gateway.practice.directory import PatientDirectory
from gateway.review import LinkedIds, ReviewItem, ReviewOrigin, ReviewSink, ReviewState
from pacs.models import PacsPatient, Peer, Study, StudyQuery
from pacs.query import OnForeign, find_studies

log = logging.getLogger(__name__)


class FindStudies(Protocol):
    def __call__(
        self, peer: Peer, calling_aet: str, query: StudyQuery, *, on_foreign: OnForeign | None
    ) -> list[Study]: ...


# DICOM C-FIND wildcards and the PN component separators: kept out of the values we send.
_PN_SPECIAL = str.maketrans({"*": " ", "?": " ", "\\": " ", "^": " ", "=": " "})


@dataclass
class PlanEntry:
    """One study of a job's plan and how far its retrieve got. A job's checkpoint keeps its
    plan as `{"studies": [entry.to_json(), ...]}`; the JSON keys are the checkpoint format, so
    a job checkpointed by an earlier version resumes (push recovery reads them too)."""

    study_uid: str
    pacs_patient_id: str
    date: date | None
    description: str | None
    modalities: tuple[str, ...]
    expected: int | None
    received: int = 0
    bytes: int = 0
    done: bool = False
    # As the PACS's C-FIND answered: every received file must carry it (when not empty).
    issuer: str = ""
    # Ask for every instance again: what the store holds is not (or no longer) the PACS's.
    refresh: bool = False

    @classmethod
    def of(cls, study: Study, *, refresh: bool = False) -> PlanEntry:
        return cls(
            study_uid=study.study_uid,
            pacs_patient_id=study.patient.patient_id,
            date=study.study_date,
            description=study.description,
            modalities=tuple(study.modalities),
            expected=study.number_of_instances,
            issuer=study.patient.issuer_of_patient_id,
            refresh=refresh,
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanEntry:
        return cls(
            study_uid=str(data["study_uid"]),
            pacs_patient_id=str(data["pacs_patient_id"]),
            date=date.fromisoformat(data["date"]) if data.get("date") else None,
            description=data.get("description"),
            modalities=tuple(data.get("modalities") or ()),
            expected=data.get("expected"),
            received=int(data.get("received") or 0),
            # Plans checkpointed before byte counts were kept have no "bytes".
            bytes=int(data.get("bytes") or 0),
            done=bool(data.get("done")),
            # Plans checkpointed before these were kept have neither.
            issuer=str(data.get("issuer") or ""),
            refresh=bool(data.get("refresh")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "pacs_patient_id": self.pacs_patient_id,
            "date": self.date.isoformat() if self.date else None,
            "description": self.description,
            "modalities": list(self.modalities),
            "expected": self.expected,
            "received": self.received,
            "bytes": self.bytes,
            "done": self.done,
            # Only when set, so a plan without them keeps the earlier format.
            **({"issuer": self.issuer} if self.issuer else {}),
            **({"refresh": True} if self.refresh else {}),
        }

    def patient(self) -> PacsPatient:
        """Whose the PACS's C-FIND said the study is, as far as received files are checked."""
        return PacsPatient(patient_id=self.pacs_patient_id, issuer_of_patient_id=self.issuer)

    def study(self) -> Study:
        """The study as the index records it (the PACS's answer, as planned)."""
        return Study(
            study_uid=self.study_uid,
            patient=self.patient(),
            study_date=self.date,
            description=self.description,
            modalities=self.modalities,
        )


def planned_study_uids(checkpoint: Mapping[str, Any]) -> list[str]:
    """The study uids of a fetch job's checkpointed plan (none when it has not planned yet)."""
    return [
        str(entry["study_uid"])
        for entry in checkpoint.get("studies") or ()
        if isinstance(entry, Mapping) and entry.get("study_uid")
    ]


@dataclass
class FetchPlan:
    """The studies to fetch, and how many of this patient's studies wait for a person."""

    fetch: list[Study] = field(default_factory=list)
    in_review: int = 0
    newly_queued: int = 0
    elsewhere: int = 0  # linked to another R4 patient: left alone
    dismissed: int = 0  # staff dismissed them earlier: left alone, not awaiting anyone


@dataclass(frozen=True)
class _Found:
    study: Study
    by_id: bool  # found under a linked or id-rule id (else only by name)


class FetchMatching:
    """Plans fetches by R4 patient id (see the module docs). Built by the Gateway."""

    def __init__(
        self,
        directory: PatientDirectory,
        review: ReviewSink,
        links: LinkedIds | None,
        rule: IdRule,
        *,
        by_demographics: bool = False,
        find: FindStudies = find_studies,
    ) -> None:
        self.directory = directory
        self.review = review
        self.links = links
        self.rule = rule
        self.by_demographics = by_demographics
        self._find = find

    def plan(
        self,
        target: FetchTarget,
        calling_aet: str,
        job_id: str,
        *,
        on_foreign: OnForeign | None = None,
    ) -> FetchPlan:
        """Query the PACS, match what it answers, queue what needs a person.

        Raises jobs.PermanentError / TransientError with sentences free of patient data."""
        assert target.request.r4_patient_id is not None
        r4_id = _r4_id(target.request.r4_patient_id)
        try:
            record = self.directory.get(r4_id)
            if record is None:
                raise jobs.PermanentError("R4 has no patient with this id.")
            matcher = self.directory.matcher(require=r4_id)
            linked = self.links.pacs_ids_for(r4_id) if self.links is not None else []
        except sa.exc.SQLAlchemyError as exc:
            raise jobs.TransientError(
                f"The R4 database or the gateway's database could not be read "
                f"({type(exc).__name__})."
            ) from None
        assert matcher is not None  # a directory that found the patient has R4
        ids = list(dict.fromkeys(pid for pid, _issuer in linked if pid.strip()))
        if record.chart_number and record.chart_number.strip():
            ids.append(self.rule.pacs_id(record.chart_number))
        names = _name_patterns(record.family_name, record.given_name)
        by_name = self.by_demographics and record.birth_date is not None and bool(names)
        if not ids and not by_name:
            raise jobs.PermanentError(
                "The R4 patient has no chart number and no linked PACS id, so their PACS "
                "studies cannot be found."
            )
        found: dict[str, _Found] = {}
        for patient_id in dict.fromkeys(ids):
            query = target.query(patient_id=patient_id)
            self._collect(found, target, calling_aet, query, on_foreign, by_id=True)
        if by_name:
            for pattern in names:
                query = target.query(patient_name=pattern, birth_date=record.birth_date)
                self._collect(found, target, calling_aet, query, on_foreign, by_id=False)
        return self._decide(matcher, r4_id, found.values(), target.pacs_name, job_id)

    def _collect(
        self,
        found: dict[str, _Found],
        target: FetchTarget,
        calling_aet: str,
        query: StudyQuery,
        on_foreign: OnForeign | None,
        *,
        by_id: bool,
    ) -> None:
        for study in self._find(target.peer, calling_aet, query, on_foreign=on_foreign):
            if not target.wants(study.study_uid):
                continue
            earlier = found.get(study.study_uid)
            if earlier is None or (by_id and not earlier.by_id):
                found[study.study_uid] = _Found(study, by_id)

    def _decide(
        self,
        matcher: Matcher,
        r4_id: int,
        found: Iterable[_Found],
        pacs_name: str,
        job_id: str,
    ) -> FetchPlan:
        plan = FetchPlan()
        decisions: dict[PacsPatient, MatchDecision] = {}
        for entry in found:
            patient = entry.study.patient
            decision = decisions.get(patient)
            if decision is None:
                decision = decisions[patient] = matcher.match(patient)
            firm = decision.auto_linked and decision.rule in (
                LinkRule.EXPLICIT_LINK,
                LinkRule.ID_RULE,
            )
            if firm and decision.r4_patient_id == r4_id:
                plan.fetch.append(entry.study)
            elif firm:
                plan.elsewhere += 1
            else:
                origin = ReviewOrigin.FETCH if entry.by_id else ReviewOrigin.NAME_QUERY
                queued = found_by_id(decision) if entry.by_id else found_by_name(decision)
                item, created = self._queue(origin, pacs_name, entry.study, queued, job_id)
                if item.state is ReviewState.DISMISSED:
                    plan.dismissed += 1
                else:
                    plan.in_review += 1
                    plan.newly_queued += int(created)
        plan.fetch.sort(key=lambda s: (s.study_date or date.min, s.study_uid))
        # Counts and the job id only: which studies and whose they are is in the queue.
        log.info(
            "job %s: %d studies to fetch, %d await review (%d new), %d linked elsewhere, "
            "%d dismissed earlier",
            job_id,
            len(plan.fetch),
            plan.in_review,
            plan.newly_queued,
            plan.elsewhere,
            plan.dismissed,
        )
        return plan

    def _queue(
        self,
        origin: ReviewOrigin,
        pacs_name: str,
        study: Study,
        decision: MatchDecision,
        job_id: str,
    ) -> tuple[ReviewItem, bool]:
        """The item holding the study (a new one, the open one, or the dismissed one that
        keeps it out of the queue) and whether it is new."""
        try:
            details = self.directory.details([c.r4_patient_id for c in decision.candidates])
            return self.review.add(
                origin=origin,
                pacs_name=pacs_name,
                patient=study.patient,
                study=study,
                decision=decision,
                details=details,
                job_id=job_id,
            )
        except sa.exc.SQLAlchemyError as exc:
            raise jobs.TransientError(
                f"A study for review could not be queued ({type(exc).__name__})."
            ) from None


def found_by_name(decision: MatchDecision) -> MatchDecision:
    """The review decision for a study only the name query found: FOUND_BY_NAME first, then
    whatever else the matcher had against it. Even an automatic demographic match is only a
    proposal here: its candidates stay, its link is dropped."""
    why = (ReviewReason.FOUND_BY_NAME, *decision.review_reasons)
    reasons = (reason_sentence(ReviewReason.FOUND_BY_NAME), *decision.reasons)
    return MatchDecision.review(decision.pacs_patient_id, why, reasons, decision.candidates)


def found_by_id(decision: MatchDecision) -> MatchDecision:
    """The review decision for a study found under a linked or id-rule id that is not firmly
    this patient's. A review decision of the matcher stands (its reasons say why). An
    automatic demographic match becomes a review with ISSUER_DIFFERS: found by id, the study
    still escaped the link and the id rule, which happens when its issuer of patient ids is
    not the link's, and demographics alone never file a study found this way. Its candidates
    stay, its link is dropped."""
    if decision.needs_review:
        return decision
    why = (ReviewReason.ISSUER_DIFFERS,)
    reasons = (reason_sentence(ReviewReason.ISSUER_DIFFERS), *decision.reasons)
    return MatchDecision.review(decision.pacs_patient_id, why, reasons, decision.candidates)


def _r4_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise jobs.PermanentError("The R4 patient id is not a number.") from None


def _name_patterns(family: str, given: str) -> Sequence[str]:
    """PN match values: "Family*" and, for a PACS that swapped the components, "Given*".

    A trailing `*` matches the rest of the value whatever follows (given names, middle names,
    suffixes); wildcard characters in R4's names are blanked so they match nothing extra.
    """
    family = " ".join(family.translate(_PN_SPECIAL).split())
    given = " ".join(given.translate(_PN_SPECIAL).split())
    patterns = [f"{value}*" for value in (family, given) if value]
    return list(dict.fromkeys(patterns))
