"""Patient matching: which R4 patient does a PACS patient belong to, or who must decide.

Order of decision (first step that applies wins):
1. explicit link (`LinkLookup`, staff-made or imported) for (PatientID, IssuerOfPatientID);
2. configured `IdRule`s (PACS id = R4 chart number / other id after prefix, padding, case);
   a single hit auto-links unless birth date AND name both contradict it; several hits go to
   review;
3. demographic score over a blocked candidate set (`PatientIndex`); auto-link only for one
   clear winner with an exact birth date and no twin/namesake born the same day;
4. anything else: `MatchDecision` with kind NEEDS_REVIEW, the reasons, and ranked candidates.

Pure logic: persistence of links and the review queue live elsewhere in the gateway.
"""

from gateway.matching.decision import (
    BirthDateMatch,
    Candidate,
    DecisionKind,
    LinkRule,
    MatchDecision,
    ReviewReason,
    SexMatch,
    Thresholds,
)
from gateway.matching.matcher import Matcher, reason_sentence
from gateway.matching.normalize import (
    NormalizedName,
    fold_text,
    normalize_birth_date,
    normalize_name,
    normalize_person_name,
    normalize_sex,
    soundex,
    swap_day_month,
)
from gateway.matching.patient_index import PatientIndex
from gateway.matching.rules import IdRule, InMemoryLinks, LinkLookup, NoLinks, loose_id_key
from gateway.matching.scoring import Demographics, name_similarity, score_candidate

__all__ = [
    "BirthDateMatch",
    "Candidate",
    "DecisionKind",
    "Demographics",
    "IdRule",
    "InMemoryLinks",
    "LinkLookup",
    "LinkRule",
    "MatchDecision",
    "Matcher",
    "NoLinks",
    "NormalizedName",
    "PatientIndex",
    "ReviewReason",
    "SexMatch",
    "Thresholds",
    "fold_text",
    "loose_id_key",
    "name_similarity",
    "normalize_birth_date",
    "normalize_name",
    "normalize_person_name",
    "normalize_sex",
    "reason_sentence",
    "score_candidate",
    "soundex",
    "swap_day_month",
]
