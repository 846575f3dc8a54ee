"""The review queue in words a receptionist uses: why a study waits, and how each R4 patient
compares with the PACS patient, without scores, thresholds or DICOM terms.

Built from the codes and facts the matcher stored (`ReviewItem.why`, each candidate's birth
date and sex comparison, how it was found), never from the patient's own data, so the
sentences are the same for everyone and safe anywhere. The matcher's technical reasons stay
in the database and the API for whoever tunes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.matching.decision import BirthDateMatch, LinkRule, ReviewReason, SexMatch
from gateway.review import ReviewCandidate, ReviewItem, ReviewOrigin

_WHY = {
    ReviewReason.NO_CANDIDATE: "Nobody in R4 looks enough like this patient to be suggested.",
    ReviewReason.BELOW_THRESHOLD: "The closest R4 patient is not close enough to be sure.",
    ReviewReason.SEVERAL_ABOVE_THRESHOLD: "More than one R4 patient looks like this patient.",
    ReviewReason.MARGIN_TOO_SMALL: "Two R4 patients look almost equally like this patient.",
    ReviewReason.POSSIBLE_TWIN: (
        "Another R4 patient has the same family name and birth date: a twin, perhaps."
    ),
    ReviewReason.POSSIBLE_NAMESAKE: (
        "Another R4 patient has the same name, with the day and month of the birth date the"
        " other way round."
    ),
    ReviewReason.BIRTH_DATE_NOT_EXACT: "The birth dates are not exactly the same.",
    ReviewReason.NAME_TOO_DIFFERENT: "The names are too different to be sure.",
    ReviewReason.SEX_DIFFERS: "The sex on the imaging system is not the sex in R4.",
    ReviewReason.ID_RULE_CONTRADICTED: (
        "The patient number on the imaging system points to an R4 patient, but the name and"
        " birth date do not agree with that patient."
    ),
    ReviewReason.ID_RULE_AMBIGUOUS: (
        "The patient number on the imaging system could belong to more than one R4 patient."
    ),
    ReviewReason.LINK_TARGET_UNKNOWN: (
        "This patient number was linked to an R4 patient who is no longer in R4."
    ),
    ReviewReason.FOUND_BY_NAME: (
        "The study was found by name and birth date under another clinic's patient number;"
        " someone must confirm it is the same person."
    ),
    ReviewReason.ISSUER_DIFFERS: (
        "The patient number is known, but this study comes from another clinic's numbering;"
        " someone must confirm it is the same person."
    ),
}
_ORIGIN = {
    ReviewOrigin.FETCH: "Found while fetching a patient's studies.",
    ReviewOrigin.NAME_QUERY: "Found by name and birth date while fetching a patient's studies.",
    ReviewOrigin.PUSH: "Sent to the gateway by the imaging system without being asked for.",
}
_BIRTH = {
    BirthDateMatch.EXACT: (True, "Same birth date"),
    BirthDateMatch.DAY_MONTH_SWAPPED: (False, "Birth date with day and month the other way round"),
    BirthDateMatch.MISSING: (None, "Birth date missing on one side"),
    BirthDateMatch.DIFFERENT: (False, "Different birth date"),
}
_SEX = {
    SexMatch.SAME: (True, "Same sex"),
    SexMatch.UNKNOWN: (None, "Sex not recorded on one side"),
    SexMatch.DIFFERENT: (False, "Different sex"),
}
# How the matcher described a name part -> (agrees?, words); see matching.scoring.
_NAME_KINDS = (
    ("matches apart from spacing", True, "the same, spaced differently"),
    ("same parts in another order", True, "the same parts in another order"),
    ("matches", True, "the same"),
    ("differs by one letter", None, "differs by one letter (a typing slip?)"),
    ("partly matches", None, "partly the same (one contains the other)"),
    ("only initials", None, "only the initials can be compared, and they agree"),
    ("similar", None, "similar but not the same"),
    ("differs", False, "different"),
    ("missing", None, "missing on one side"),
)
_NAME_REASON = re.compile(r"^(family|given) name (?P<kind>.+?)(?: PACS \w+ name)? \([0-9.]+\)$")
_WHOLE_REASON = re.compile(r"^name not split into parts; compared as a whole: (?P<kind>.+?) \(")


@dataclass(frozen=True)
class Point:
    """One comparison of a candidate with the PACS patient; `agrees` None = cannot tell."""

    agrees: bool | None
    text: str

    @property
    def mark(self) -> str:
        if self.agrees is None:
            return "unsure"
        return "agrees" if self.agrees else "differs"


def item_reasons(item: ReviewItem) -> list[str]:
    """Why the study waits for a person, as sentences; the origin when no code says more."""
    sentences = [_WHY[ReviewReason(code)] for code in item.why if code in _WHY_VALUES]
    return sentences or [_ORIGIN[item.origin]]


def candidate_points(candidate: ReviewCandidate) -> list[Point]:
    """How one R4 patient compares: names, birth date, sex, and how the gateway found them."""
    points: list[Point] = []
    if candidate.via == LinkRule.EXPLICIT_LINK.value:
        points.append(Point(True, "Staff linked this patient number to this R4 patient before"))
    elif candidate.via == LinkRule.ID_RULE.value:
        points.append(Point(True, "The patient number on the imaging system is this chart number"))
    if candidate.names_swapped:
        points.append(
            Point(None, "The imaging system has the given and family names the other way round")
        )
    for reason in candidate.reasons:
        point = _name_point(reason)
        if point is not None:
            points.append(point)
    if candidate.birth_date_match in _BIRTH_VALUES:
        points.append(Point(*_BIRTH[BirthDateMatch(candidate.birth_date_match)]))
    if candidate.sex_match in _SEX_VALUES:
        points.append(Point(*_SEX[SexMatch(candidate.sex_match)]))
    return points


def closeness(candidate: ReviewCandidate) -> str:
    """A word for how alike the two records are, instead of a number."""
    score = candidate.score
    if score >= 0.93:
        return "Very alike"
    if score >= 0.8:
        return "Alike"
    if score >= 0.6:
        return "Partly alike"
    return "Not much alike"


def _name_point(reason: str) -> Point | None:
    whole = _WHOLE_REASON.match(reason)
    if whole:
        agrees, words = _kind(whole["kind"])
        return Point(agrees, f"Whole name (not split into parts): {words}")
    part = _NAME_REASON.match(reason)
    if not part:
        return None
    agrees, words = _kind(part["kind"])
    return Point(agrees, f"{part.group(1).capitalize()} name: {words}")


def _kind(text: str) -> tuple[bool | None, str]:
    for prefix, agrees, words in _NAME_KINDS:
        if text.startswith(prefix):
            return agrees, words
    return None, "compared"


_WHY_VALUES = {r.value for r in _WHY}
_BIRTH_VALUES = {b.value for b in BirthDateMatch}
_SEX_VALUES = {s.value for s in SexMatch}


def origin_text(origin: ReviewOrigin | str) -> str:
    """How the study reached the queue, as a sentence."""
    try:
        return _ORIGIN[ReviewOrigin(origin)]
    except ValueError:
        return ""


_ACTIONS = {
    "review.resolve": "resolved a review item",
    "review.dismiss": "dismissed a review item",
    "review.reopen": "reopened a review item",
    "link.create": "linked a PACS patient number to an R4 patient",
    "link.delete": "removed a patient link",
    "link.import": "imported patient links",
    "fetch.submit": "asked for a fetch",
    "view.job": "opened a job page",
    "view.study": "opened a study",
    "view.preview": "opened a preview",
    "view.dicomweb": "opened images in a viewer (DICOMweb)",
}


def action_words(action: str) -> str:
    """An audit action in words; the code itself for one this table does not know."""
    return _ACTIONS.get(action, action)
