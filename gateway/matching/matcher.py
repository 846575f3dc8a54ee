"""The decision order: explicit link -> id rules -> demographic score -> otherwise review.

A wrong link files one patient's images in another's record, so every step errs towards the
review queue: the matcher never drops a PACS patient and never picks between near-equals.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.matching.decision import (
    BirthDateMatch,
    Candidate,
    LinkRule,
    MatchDecision,
    ReviewReason,
    SexMatch,
    Thresholds,
)
from gateway.matching.normalize import normalize_birth_date, normalize_person_name, normalize_sex
from gateway.matching.patient_index import PatientIndex
from gateway.matching.rules import IdRule, LinkLookup, NoLinks, loose_id_key
from gateway.matching.scoring import FAMILY_WEIGHT, GIVEN_WEIGHT, Demographics, score_candidate
from pacs.models import PacsPatient

_REVIEW_SENTENCES = {
    ReviewReason.NO_CANDIDATE: "no R4 patient is similar enough to list",
    ReviewReason.BELOW_THRESHOLD: "best candidate scores below the auto-link threshold",
    ReviewReason.SEVERAL_ABOVE_THRESHOLD: "several candidates score above the auto-link threshold",
    ReviewReason.MARGIN_TOO_SMALL: "best candidate is not clearly ahead of the next",
    ReviewReason.POSSIBLE_TWIN: (
        "another R4 patient has the same birth date and family name (twin or namesake)"
    ),
    ReviewReason.POSSIBLE_NAMESAKE: (
        "another R4 patient has the same name and this birth date with day and month swapped"
    ),
    ReviewReason.BIRTH_DATE_NOT_EXACT: "an automatic link needs an exact birth date",
    ReviewReason.NAME_TOO_DIFFERENT: "family or given name below its floor for an automatic link",
    ReviewReason.SEX_DIFFERS: "sex differs from the best candidate",
    ReviewReason.ID_RULE_CONTRADICTED: (
        "id rule matched an R4 patient whose name differs and whose birth date differs or is"
        " missing"
    ),
    ReviewReason.ID_RULE_AMBIGUOUS: "id rules point to more than one R4 patient",
    ReviewReason.LINK_TARGET_UNKNOWN: "explicit link points to an R4 patient not in the index",
    ReviewReason.FOUND_BY_NAME: (
        "found by name and birth date under a PACS id not linked to this patient; a person"
        " must confirm"
    ),
    ReviewReason.ISSUER_DIFFERS: (
        "found under a PACS id linked to this patient, but from another issuer of patient ids;"
        " a person must confirm"
    ),
}


def reason_sentence(reason: ReviewReason) -> str:
    """The sentence staff read for a review reason code."""
    return _REVIEW_SENTENCES[reason]


def _name_agreement(candidate: Candidate) -> float:
    """Family and given scores combined, on a 0..1 scale."""
    return (FAMILY_WEIGHT * candidate.family_score + GIVEN_WEIGHT * candidate.given_score) / (
        FAMILY_WEIGHT + GIVEN_WEIGHT
    )


def _ranked(candidates: list[Candidate]) -> list[Candidate]:
    # Ties broken by R4 id so the same input always gives the same review list.
    return sorted(candidates, key=lambda c: (-c.score, c.r4_patient_id))


class Matcher:
    """Matches PACS patients to R4 patients. Thread-safe for concurrent `match` calls once built
    (it only reads the index and the link lookup)."""

    def __init__(
        self,
        index: PatientIndex,
        links: LinkLookup | None = None,
        id_rules: Sequence[IdRule] = (),
        thresholds: Thresholds | None = None,
    ) -> None:
        self.index = index
        self.links: LinkLookup = links if links is not None else NoLinks()
        self.id_rules = tuple(id_rules)
        self.thresholds = thresholds or Thresholds()

    @staticmethod
    def demographics_of(patient: PacsPatient) -> Demographics:
        name = normalize_person_name(patient.name)
        return Demographics(
            family=name.family,
            given=name.given,
            birth_date=normalize_birth_date(patient.birth_date),
            sex=normalize_sex(patient.sex),
        )

    def match(self, patient: PacsPatient) -> MatchDecision:
        query = self.demographics_of(patient)
        patient_id = (patient.patient_id or "").strip()
        issuer = (patient.issuer_of_patient_id or "").strip()

        if patient_id:
            linked = self.links.r4_patient_for(patient_id, issuer)
            if linked is not None:
                return self._by_link(patient_id, query, linked)
        hits = self._id_rule_hits(patient_id, issuer, patient.other_patient_ids)
        if hits:
            return self._by_id_rule(patient_id, query, hits)
        return self._by_demographics(patient_id, query)

    # -- step 1: explicit link ---------------------------------------------------------------

    def _by_link(self, patient_id: str, query: Demographics, r4_id: int) -> MatchDecision:
        row = self.index.row_of(r4_id)
        if row is None:
            # The link table outlived the R4 patient (merged or deleted in R4). Linking to an
            # id the practice no longer has would file images nowhere visible.
            others = self._demographic_candidates(query)
            return MatchDecision.review(
                patient_id,
                (ReviewReason.LINK_TARGET_UNKNOWN,),
                (f"explicit link points to R4 patient {r4_id}, which is not in the index",),
                tuple(self._review_list(others)),
            )
        candidate = score_candidate(
            query, self.index.demographics(row), r4_id, LinkRule.EXPLICIT_LINK
        )
        # Staff decided this link knowingly; demographics are shown, not second-guessed.
        return MatchDecision.link(
            patient_id,
            candidate,
            LinkRule.EXPLICIT_LINK,
            ("explicit link for this PACS patient id and issuer", *candidate.reasons),
        )

    # -- step 2: id rules --------------------------------------------------------------------

    def _id_rule_hits(
        self, patient_id: str, issuer: str, other_ids: Sequence[str]
    ) -> dict[int, list[str]]:
        """Rows hit by any id rule, with a sentence per hit naming the rule and fields only."""
        hits: dict[int, list[str]] = {}
        for rule in self.id_rules:
            if not rule.applies_to_issuer(issuer):
                continue
            for pacs_id in rule.pacs_ids(patient_id, other_ids):
                key = rule.pacs_key(pacs_id)
                if key is None:
                    continue
                pacs_field = "PatientID" if pacs_id == patient_id else "OtherPatientIDs"
                loose = loose_id_key(key)
                if rule.match_chart_number:
                    for row in self.index.rows_by_chart(loose):
                        if rule.r4_key(self.index.chart_number(row)) == key:
                            hits.setdefault(row, []).append(
                                f"PACS {pacs_field} equals the R4 chart number (rule '{rule.name}')"
                            )
                if rule.match_r4_other_ids:
                    for row in self.index.rows_by_other_id(loose):
                        if any(rule.r4_key(o) == key for o in self.index.other_ids(row)):
                            hits.setdefault(row, []).append(
                                f"PACS {pacs_field} equals an R4 other id (rule '{rule.name}')"
                            )
        return hits

    def _by_id_rule(
        self, patient_id: str, query: Demographics, hits: dict[int, list[str]]
    ) -> MatchDecision:
        scored = [
            score_candidate(
                query, self.index.demographics(row), self.index.r4_id(row), LinkRule.ID_RULE
            )
            for row in hits
        ]
        hit_reasons = tuple(dict.fromkeys(r for rs in hits.values() for r in rs))
        if len(scored) > 1:
            # Field note 7: different people can share an id. Never choose between them here.
            return MatchDecision.review(
                patient_id,
                (ReviewReason.ID_RULE_AMBIGUOUS,),
                (_REVIEW_SENTENCES[ReviewReason.ID_RULE_AMBIGUOUS], *hit_reasons),
                self._with_demographic_candidates(query, scored),
            )
        candidate = scored[0]
        name = _name_agreement(candidate)
        limit = self.thresholds.id_rule_name_contradiction
        # Contradicted: the name disagrees and the birth date does not vouch for the link.
        # A missing birth date counts like a different one here: with the name as the only
        # evidence and that evidence against, an id coincidence is the likelier story.
        unconfirmed = candidate.birth_date in (BirthDateMatch.DIFFERENT, BirthDateMatch.MISSING)
        if unconfirmed and name < limit:
            return MatchDecision.review(
                patient_id,
                (ReviewReason.ID_RULE_CONTRADICTED,),
                (
                    _REVIEW_SENTENCES[ReviewReason.ID_RULE_CONTRADICTED],
                    *hit_reasons,
                    f"name agreement {name:.2f} is below {limit:.2f}",
                ),
                self._with_demographic_candidates(query, scored),
            )
        return MatchDecision.link(
            patient_id, candidate, LinkRule.ID_RULE, (*hit_reasons, *candidate.reasons)
        )

    # -- step 3: demographics ----------------------------------------------------------------

    def _demographic_candidates(self, query: Demographics) -> list[Candidate]:
        if not query.family and not query.given and query.birth_date is None:
            return []
        index = self.index
        return _ranked(
            [
                score_candidate(query, index.demographics(row), index.r4_id(row))
                for row in index.candidate_rows(query)
            ]
        )

    def _review_list(self, ranked: list[Candidate]) -> list[Candidate]:
        t = self.thresholds
        return [c for c in ranked if c.score >= t.review_floor][: t.max_review_candidates]

    def _with_demographic_candidates(
        self, query: Demographics, first: list[Candidate]
    ) -> tuple[Candidate, ...]:
        """Id-rule candidates first (they are why the item exists), then demographic ones."""
        seen = {c.r4_patient_id for c in first}
        rest = [c for c in self._demographic_candidates(query) if c.r4_patient_id not in seen]
        return (*_ranked(first), *self._review_list(rest))

    def _by_demographics(self, patient_id: str, query: Demographics) -> MatchDecision:
        t = self.thresholds
        ranked = self._demographic_candidates(query)
        listed = self._review_list(ranked)
        if not listed:
            return MatchDecision.review(
                patient_id,
                (ReviewReason.NO_CANDIDATE,),
                (_REVIEW_SENTENCES[ReviewReason.NO_CANDIDATE],),
                (),
            )
        best = ranked[0]
        why: list[ReviewReason] = []
        notes: list[str] = []
        if best.score < t.auto_link:
            why.append(ReviewReason.BELOW_THRESHOLD)
            notes.append(f"best score {best.score:.2f} is below {t.auto_link:.2f}")
        if best.birth_date is not BirthDateMatch.EXACT:
            why.append(ReviewReason.BIRTH_DATE_NOT_EXACT)
        if best.family_score < t.family_floor or best.given_score < t.given_floor:
            why.append(ReviewReason.NAME_TOO_DIFFERENT)
        if best.sex is SexMatch.DIFFERENT and not t.allow_sex_mismatch:
            why.append(ReviewReason.SEX_DIFFERS)
        above = [c for c in ranked if c.score >= t.auto_link]
        if len(above) > 1:
            why.append(ReviewReason.SEVERAL_ABOVE_THRESHOLD)
            notes.append(f"{len(above)} candidates score at least {t.auto_link:.2f}")
        elif len(ranked) > 1 and best.score - ranked[1].score < t.margin:
            why.append(ReviewReason.MARGIN_TOO_SMALL)
            notes.append(
                f"margin {best.score - ranked[1].score:.2f} over the next is below {t.margin:.2f}"
            )
        if best.birth_date is BirthDateMatch.EXACT:
            # Every R4 patient born that day is in the candidate list (birth-date block), so
            # this check sees all possible twins, not just the top few.
            twins = [
                c
                for c in ranked[1:]
                if c.birth_date is BirthDateMatch.EXACT and c.family_score >= t.twin_family
            ]
            if twins:
                why.append(ReviewReason.POSSIBLE_TWIN)
                notes.append(
                    f"{len(twins)} other R4 patient(s) share the birth date and family name"
                )
            # The swapped-date block is always searched, so this sees every such row. A
            # namesake with no birth date in R4 does not block: for the link to be wrong, the
            # dated candidate would have to share name and exact birth date with a stranger
            # (the twin case, checked above); more often the undated one is a duplicate.
            namesakes = [
                c
                for c in ranked[1:]
                if c.birth_date is BirthDateMatch.DAY_MONTH_SWAPPED
                and c.family_score >= t.twin_family
                and c.given_score >= t.given_floor
            ]
            if namesakes:
                why.append(ReviewReason.POSSIBLE_NAMESAKE)
        if why:
            return MatchDecision.review(
                patient_id,
                tuple(why),
                tuple(_REVIEW_SENTENCES[w] for w in dict.fromkeys(why)) + tuple(notes),
                tuple(listed),
            )
        margin = best.score - ranked[1].score if len(ranked) > 1 else best.score
        return MatchDecision.link(
            patient_id,
            best,
            LinkRule.DEMOGRAPHICS,
            (
                f"only candidate above {t.auto_link:.2f}, ahead of the next by {margin:.2f}",
                *best.reasons,
            ),
            tuple(listed),
        )
