"""What the matcher hands back: candidates with their evidence, one decision per PACS patient."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class LinkRule(StrEnum):
    """Which step of the decision order produced a link (or a candidate)."""

    EXPLICIT_LINK = "link"
    ID_RULE = "id_rule"
    DEMOGRAPHICS = "demographics"


class BirthDateMatch(StrEnum):
    EXACT = "exact"
    DAY_MONTH_SWAPPED = "day_month_swapped"
    MISSING = "missing"  # absent on either side
    DIFFERENT = "different"


class SexMatch(StrEnum):
    SAME = "same"
    UNKNOWN = "unknown"  # absent or "O" on either side
    DIFFERENT = "different"


class ReviewReason(StrEnum):
    """Why a PACS patient goes to the review queue. Several can apply at once."""

    NO_CANDIDATE = "no_candidate"
    BELOW_THRESHOLD = "below_threshold"
    SEVERAL_ABOVE_THRESHOLD = "several_above_threshold"
    MARGIN_TOO_SMALL = "margin_too_small"
    POSSIBLE_TWIN = "possible_twin"  # same birth date and family name as another R4 patient
    # Another R4 patient with the same name whose birth date is this one with day and month
    # swapped: a duplicate registration or a namesake with a mistyped date, unknowable here.
    POSSIBLE_NAMESAKE = "possible_namesake"
    BIRTH_DATE_NOT_EXACT = "birth_date_not_exact"
    NAME_TOO_DIFFERENT = "name_too_different"
    SEX_DIFFERS = "sex_differs"
    ID_RULE_CONTRADICTED = "id_rule_contradicted"
    ID_RULE_AMBIGUOUS = "id_rule_ambiguous"
    LINK_TARGET_UNKNOWN = "link_target_unknown"
    # Set by the fetch, not the matcher: a name + birth date query found the study under a
    # PACS id that no link or id rule ties to the patient, so even a clear score is not enough.
    FOUND_BY_NAME = "found_by_name"
    # Set by the fetch, not the matcher: a query by a PACS id linked to the patient answered a
    # study whose issuer of patient ids is not the link's, so the link did not apply and only
    # the demographics spoke for it: a person confirms, even for a clear score.
    ISSUER_DIFFERS = "issuer_differs"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One R4 patient considered for a PACS patient, with every component of its score.

    `reasons` are sentences for staff ("family name matches (0.97)"); they name fields and
    scores, never the patient's actual name or birth date, so they are safe to log.
    """

    r4_patient_id: int
    score: float
    family_score: float
    given_score: float
    birth_date: BirthDateMatch
    sex: SexMatch
    names_swapped: bool = False
    reasons: tuple[str, ...] = ()
    # Set when an explicit link or an id rule (rather than only demographics) pointed here.
    via: LinkRule | None = None


class DecisionKind(StrEnum):
    AUTO_LINKED = "auto_linked"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """Either an automatic link to exactly one R4 patient, or a review item. Never "nothing".

    For an auto-link `r4_patient_id` and `rule` are set; for a review item `review_reasons`
    is non-empty and `candidates` is ranked best first (possibly empty).
    """

    kind: DecisionKind
    pacs_patient_id: str
    r4_patient_id: int | None = None
    rule: LinkRule | None = None
    reasons: tuple[str, ...] = ()
    review_reasons: tuple[ReviewReason, ...] = ()
    candidates: tuple[Candidate, ...] = field(default=())

    def __post_init__(self) -> None:
        # A review item must say why it needs a person (ReviewQueue.add refuses one that
        # does not); an automatic link must say to whom.
        if self.kind is DecisionKind.NEEDS_REVIEW and not self.review_reasons:
            raise ValueError("a review decision needs at least one review reason")
        if self.kind is DecisionKind.AUTO_LINKED and self.r4_patient_id is None:
            raise ValueError("an automatic link needs the R4 patient it links to")

    @property
    def auto_linked(self) -> bool:
        return self.kind is DecisionKind.AUTO_LINKED

    @property
    def needs_review(self) -> bool:
        return self.kind is DecisionKind.NEEDS_REVIEW

    @classmethod
    def link(
        cls,
        pacs_patient_id: str,
        candidate: Candidate,
        rule: LinkRule,
        reasons: tuple[str, ...],
        candidates: tuple[Candidate, ...] = (),
    ) -> MatchDecision:
        return cls(
            kind=DecisionKind.AUTO_LINKED,
            pacs_patient_id=pacs_patient_id,
            r4_patient_id=candidate.r4_patient_id,
            rule=rule,
            reasons=reasons,
            candidates=candidates or (candidate,),
        )

    @classmethod
    def review(
        cls,
        pacs_patient_id: str,
        why: tuple[ReviewReason, ...],
        reasons: tuple[str, ...],
        candidates: tuple[Candidate, ...],
    ) -> MatchDecision:
        return cls(
            kind=DecisionKind.NEEDS_REVIEW,
            pacs_patient_id=pacs_patient_id,
            reasons=reasons,
            review_reasons=tuple(dict.fromkeys(why)),
            candidates=candidates,
        )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Tunable limits of the demographic and id-rule decisions (defaults: see the module docs).

    With an exact birth date (weight 0.35) the name parts must carry the rest: at the floors
    (family 0.90, given 0.85) the score is 0.92, so `auto_link` 0.93 is reachable only by
    names that agree apart from one typo, a dropped part of a compound name, or a swap.
    """

    auto_link: float = 0.93
    margin: float = 0.10
    family_floor: float = 0.90
    given_floor: float = 0.85
    # An id-rule hit is contradicted when the birth dates differ (not just day/month swapped)
    # AND the combined name similarity is below this.
    id_rule_name_contradiction: float = 0.75
    # Another candidate with the same exact birth date and a family name at least this similar
    # makes the best one a possible twin or namesake.
    twin_family: float = 0.85
    # A sex mismatch is penalised in the score; unless allowed here it also blocks a
    # demographic auto-link (twins of opposite sex, or a parent with a child's record).
    allow_sex_mismatch: bool = False
    # Review lists stop here; weaker candidates are noise for staff.
    review_floor: float = 0.50
    max_review_candidates: int = 5

    def __post_init__(self) -> None:
        if not 0.0 < self.auto_link <= 1.0:
            raise ValueError("auto_link must be in (0, 1]")
        if self.margin < 0.0:
            raise ValueError("margin must not be negative")
        if self.max_review_candidates < 1:
            raise ValueError("max_review_candidates must be at least 1")
