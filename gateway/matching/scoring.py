"""Demographic comparison of one PACS patient with one R4 patient, with the evidence spelled out.

Score = 0.35 x family + 0.30 x given + 0.35 x birth date, minus 0.10 when sex differs.
Birth date: exact 1.0, day/month swapped 0.6, missing 0.5 (neutral: no evidence either way),
different 0.0. Names compare folded tokens (see `normalize`); `name_similarity` explains
which kind of agreement it found, because staff resolving a review item need the why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from gateway.matching.decision import BirthDateMatch, Candidate, LinkRule, SexMatch
from gateway.matching.normalize import swap_day_month

FAMILY_WEIGHT = 0.35
GIVEN_WEIGHT = 0.30
BIRTH_DATE_WEIGHT = 0.35
SEX_MISMATCH_PENALTY = 0.10

_BIRTH_DATE_SCORES = {
    BirthDateMatch.EXACT: 1.0,
    BirthDateMatch.DAY_MONTH_SWAPPED: 0.6,
    BirthDateMatch.MISSING: 0.5,
    BirthDateMatch.DIFFERENT: 0.0,
}
# Score of a name part absent on either side: neutral, and below every floor, so a missing
# name never contributes to an automatic link.
MISSING_NAME_SCORE = 0.5
# Swapping family and given costs a little, so that a genuine same-order match always wins.
SWAP_FACTOR = 0.97
# A PN with no ^ (whole name in the family component) is compared as a bag of tokens.
UNSTRUCTURED_FACTOR = 0.97


@dataclass(frozen=True, slots=True)
class Demographics:
    """Normalised demographics of one person (either side)."""

    family: str
    given: str
    birth_date: date | None
    sex: str | None  # "M", "F" or None


@lru_cache(maxsize=1 << 17)
def name_similarity(a: str, b: str) -> tuple[float, str]:
    """Similarity in [0, 1] of two folded, space-joined names and what kind of agreement it is.

    Tiered rather than one fuzzy ratio so that the common clerical errors get scores staff can
    read at a glance, and so a one-letter typo in a long name scores like the typo it is
    (a plain ratio would punish "Jonson"/"Johnson" more than "Smith"/"Smyth" for no reason).
    """
    if not a or not b:
        return MISSING_NAME_SCORE, "missing"
    if a == b:
        return 1.0, "matches"
    a0, b0 = a.replace(" ", ""), b.replace(" ", "")
    if a0 == b0:
        return 0.98, "matches apart from spacing"
    ta, tb = a.split(), b.split()
    if sorted(ta) == sorted(tb):
        return 0.97, "same parts in another order"
    shortest = min(len(a0), len(b0))
    if shortest >= 3 and OSA.distance(a0, b0, score_cutoff=1) <= 1:
        # Short names: one letter is a bigger share of the identity ("Tom"/"Tim").
        score = 0.95 if shortest >= 5 else 0.92 if shortest == 4 else 0.80
        return score, "differs by one letter"
    sa, sb = set(ta), set(tb)
    if sa < sb or sb < sa:
        return 0.90, "partly matches (one contains the other)"
    if all(len(t) == 1 for t in ta) or all(len(t) == 1 for t in tb):
        short, full = (ta, tb) if all(len(t) == 1 for t in ta) else (tb, ta)
        if all(any(f.startswith(s) for f in full) for s in short):
            return 0.60, "only initials, which agree"
    ratio = fuzz.token_sort_ratio(a, b) / 100.0
    return ratio, ("similar" if ratio >= 0.75 else "differs")


def birth_date_match(query: date | None, r4: date | None) -> BirthDateMatch:
    if query is None or r4 is None:
        return BirthDateMatch.MISSING
    if query == r4:
        return BirthDateMatch.EXACT
    if swap_day_month(query) == r4:
        return BirthDateMatch.DAY_MONTH_SWAPPED
    return BirthDateMatch.DIFFERENT


def sex_match(query: str | None, r4: str | None) -> SexMatch:
    if query is None or r4 is None:
        return SexMatch.UNKNOWN
    return SexMatch.SAME if query == r4 else SexMatch.DIFFERENT


_BIRTH_DATE_REASONS = {
    BirthDateMatch.EXACT: "birth date matches",
    BirthDateMatch.DAY_MONTH_SWAPPED: "birth date day/month swapped",
    BirthDateMatch.MISSING: "birth date missing on one side",
    BirthDateMatch.DIFFERENT: "birth date differs",
}
_SEX_REASONS = {
    SexMatch.SAME: "sex matches",
    SexMatch.UNKNOWN: "sex unknown on one side",
    SexMatch.DIFFERENT: "sex differs",
}


def _name_part_weighted(family: float, given: float) -> float:
    return FAMILY_WEIGHT * family + GIVEN_WEIGHT * given


def compare_names(query: Demographics, r4: Demographics) -> tuple[float, float, bool, list[str]]:
    """(family score, given score, swapped?, reasons) for the best reading of the two names."""
    fam, fam_kind = name_similarity(query.family, r4.family)
    giv, giv_kind = name_similarity(query.given, r4.given)
    best = (
        fam,
        giv,
        False,
        [f"family name {fam_kind} ({fam:.2f})", f"given name {giv_kind} ({giv:.2f})"],
    )
    best_value = _name_part_weighted(fam, giv)

    # Given and family swapped: common when a PACS front desk fills PN as "Given^Family".
    if query.family and query.given and r4.family and r4.given:
        sfam, sfam_kind = name_similarity(query.family, r4.given)
        sgiv, sgiv_kind = name_similarity(query.given, r4.family)
        sfam, sgiv = sfam * SWAP_FACTOR, sgiv * SWAP_FACTOR
        if _name_part_weighted(sgiv, sfam) > best_value + 0.02:
            best_value = _name_part_weighted(sgiv, sfam)
            best = (
                sgiv,
                sfam,
                True,
                [
                    "given and family names swapped",
                    f"family name {sgiv_kind} PACS given name ({sgiv:.2f})",
                    f"given name {sfam_kind} PACS family name ({sfam:.2f})",
                ],
            )

    # The whole name typed into one PN component ("SMITH JOHN" with no ^).
    if (not query.given and " " in query.family) or (not r4.given and " " in r4.family):
        q_all = " ".join(sorted(f"{query.family} {query.given}".split()))
        r_all = " ".join(sorted(f"{r4.family} {r4.given}".split()))
        whole, whole_kind = name_similarity(q_all, r_all)
        whole *= UNSTRUCTURED_FACTOR
        if _name_part_weighted(whole, whole) > best_value + 0.02:
            best = (
                whole,
                whole,
                False,
                [f"name not split into parts; compared as a whole: {whole_kind} ({whole:.2f})"],
            )
    return best


def score_candidate(
    query: Demographics, r4: Demographics, r4_patient_id: int, via: LinkRule | None = None
) -> Candidate:
    """Score one R4 patient against a PACS patient and explain every component."""
    family, given, swapped, reasons = compare_names(query, r4)
    bd = birth_date_match(query.birth_date, r4.birth_date)
    sex = sex_match(query.sex, r4.sex)
    score = _name_part_weighted(family, given) + BIRTH_DATE_WEIGHT * _BIRTH_DATE_SCORES[bd]
    if sex is SexMatch.DIFFERENT:
        score -= SEX_MISMATCH_PENALTY
    reasons.append(_BIRTH_DATE_REASONS[bd])
    reasons.append(_SEX_REASONS[sex])
    return Candidate(
        r4_patient_id=r4_patient_id,
        score=round(max(score, 0.0), 4),
        family_score=round(family, 4),
        given_score=round(given, 4),
        birth_date=bd,
        sex=sex,
        names_swapped=swapped,
        reasons=tuple(reasons),
        via=via,
    )
