"""Decision rules, one small hand-made practice per case."""

from datetime import date

import pytest

from gateway.matching import (
    BirthDateMatch,
    IdRule,
    InMemoryLinks,
    LinkRule,
    MatchDecision,
    Matcher,
    PatientIndex,
    ReviewReason,
    Thresholds,
)
from pacs.models import PacsPatient, PersonName
from r4.records import PatientRecord

BORN = date(1975, 4, 2)


def r4(id, family, given, born=BORN, sex="F", chart=None, other_ids=()):
    return PatientRecord(id, chart, family, given, born, sex, other_ids)


def pacs(pn, born=BORN, sex="F", pid="EXT1", issuer="OUTSIDE", other_ids=()):
    return PacsPatient(pid, PersonName.parse(pn), born, sex, issuer, other_ids)


def matcher(*records, links=None, rules=(), thresholds=None):
    return Matcher(PatientIndex.build(records), links or InMemoryLinks(), rules, thresholds)


def assert_review(decision: MatchDecision, *why: ReviewReason):
    assert decision.needs_review
    assert decision.r4_patient_id is None
    for reason in why:
        assert reason in decision.review_reasons, decision.review_reasons
    assert decision.reasons


# -- step 1: explicit links ----------------------------------------------------------------


def test_explicit_link_wins_over_everything():
    m = matcher(
        r4(1, "Kowalski", "Anna", chart="EXT1"),
        r4(2, "Nowak", "Piotr", born=date(1960, 1, 1), sex="M"),
        links=InMemoryLinks({("EXT1", "OUTSIDE"): 2}),
        rules=[IdRule()],
    )
    d = m.match(pacs("Kowalski^Anna"))
    assert d.auto_linked
    assert d.r4_patient_id == 2
    assert d.rule is LinkRule.EXPLICIT_LINK
    assert d.reasons[0] == "explicit link for this PACS patient id and issuer"
    # Demographics are reported (they disagree) but do not override staff.
    assert "birth date differs" in d.reasons


def test_link_for_another_issuer_does_not_apply():
    m = matcher(r4(1, "Kowalski", "Anna"), links=InMemoryLinks({("EXT1", "ELSEWHERE"): 99}))
    d = m.match(pacs("Kowalski^Anna"))
    assert d.rule is LinkRule.DEMOGRAPHICS


def test_link_to_unknown_r4_patient_goes_to_review():
    m = matcher(r4(1, "Kowalski", "Anna"), links=InMemoryLinks({("EXT1", "OUTSIDE"): 42}))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.LINK_TARGET_UNKNOWN)
    assert [c.r4_patient_id for c in d.candidates] == [1]


# -- step 2: id rules ----------------------------------------------------------------------


def test_id_rule_links_even_with_demographic_typos():
    m = matcher(r4(1, "Kowalski", "Anna", chart="12345"), rules=[IdRule(prefix="R4-", pad_width=8)])
    d = m.match(pacs("Kowalsky^Ana", born=None, pid="R4-00012345", issuer=""))
    assert d.auto_linked
    assert d.r4_patient_id == 1
    assert d.rule is LinkRule.ID_RULE
    assert "PACS PatientID equals the R4 chart number (rule 'chart-number')" in d.reasons


def test_id_rule_with_only_birth_date_differing_still_links():
    m = matcher(r4(1, "Kowalski", "Anna", chart="12345"), rules=[IdRule()])
    d = m.match(pacs("Kowalski^Anna", born=date(1999, 12, 31), pid="12345"))
    assert d.auto_linked
    assert "birth date differs" in d.reasons


def test_id_rule_with_only_name_differing_still_links():
    m = matcher(r4(1, "Kowalski", "Anna", chart="12345"), rules=[IdRule()])
    d = m.match(pacs("Smith^John", pid="12345"))
    assert d.auto_linked
    assert "birth date matches" in d.reasons


def test_id_rule_contradicted_by_birth_date_and_name_goes_to_review():
    m = matcher(
        r4(1, "Kowalski", "Anna", chart="12345"),
        r4(2, "Smith", "John", born=date(1999, 12, 31), sex="M"),
        rules=[IdRule()],
    )
    d = m.match(pacs("Smith^John", born=date(1999, 12, 31), sex="M", pid="12345"))
    assert_review(d, ReviewReason.ID_RULE_CONTRADICTED)
    # The id-rule candidate comes first, then the demographic one.
    assert [c.r4_patient_id for c in d.candidates] == [1, 2]
    assert d.candidates[0].via is LinkRule.ID_RULE
    assert d.candidates[1].via is None


def test_id_rule_with_missing_birth_date_and_different_name_goes_to_review():
    m = matcher(r4(1, "Kowalski", "Anna", chart="12345"), rules=[IdRule()])
    d = m.match(pacs("Smith^John", born=None, pid="12345"))
    assert_review(d, ReviewReason.ID_RULE_CONTRADICTED)


def test_id_rule_hitting_two_patients_goes_to_review():
    m = matcher(
        r4(1, "Kowalski", "Anna", chart="12345"),
        r4(2, "Kowalski", "Anna", chart="77", other_ids=("12345",)),
        rules=[IdRule(match_r4_other_ids=True)],
    )
    d = m.match(pacs("Kowalski^Anna", pid="12345"))
    assert_review(d, ReviewReason.ID_RULE_AMBIGUOUS)
    assert {c.r4_patient_id for c in d.candidates} == {1, 2}


def test_id_rule_on_pacs_other_patient_ids():
    m = matcher(r4(1, "Kowalski", "Anna", chart="555"), rules=[IdRule(use_pacs_other_ids=True)])
    d = m.match(pacs("Kowalski^Anna", pid="EXT9", other_ids=("000", "555")))
    assert d.rule is LinkRule.ID_RULE
    assert "PACS OtherPatientIDs equals the R4 chart number (rule 'chart-number')" in d.reasons


def test_id_rule_on_other_ids_when_patient_id_is_empty():
    m = matcher(r4(1, "Kowalski", "Anna", chart="555"), rules=[IdRule(use_pacs_other_ids=True)])
    d = m.match(pacs("Kowalski^Anna", pid="", other_ids=("555",)))
    assert d.rule is LinkRule.ID_RULE


def test_non_latin_names_match_themselves():
    m = matcher(r4(1, "Иванов", "Пётр", sex="M"))
    assert m.match(pacs("ИВАНОВ^ПЁТР", sex="M")).r4_patient_id == 1


def test_id_rule_respects_issuer():
    m = matcher(r4(1, "Nowak", "Ewa", chart="12345"), rules=[IdRule(issuers=("",))])
    d = m.match(pacs("Kowalski^Anna", pid="12345", issuer="OUTSIDE"))
    assert d.needs_review  # rule skipped; demographics find nobody


def test_zero_padding_only_matches_when_configured():
    record = r4(1, "Nowak", "Ewa", born=date(1950, 1, 1), chart="42")
    assert not matcher(record, rules=[IdRule()]).match(pacs("X^Y", pid="0042")).auto_linked
    d = matcher(record, rules=[IdRule(pad_width=6)]).match(pacs("Nowak^Ewa", pid="0042"))
    assert d.rule is LinkRule.ID_RULE


# -- step 3: demographics ------------------------------------------------------------------


@pytest.mark.parametrize(
    "pn",
    [
        "Kowalski^Anna",
        "KOWALSKI^ANNA",
        "Kowalsky^Anna",  # typo
        "Anna^Kowalski",  # swapped
        "Kowalski Anna",  # unstructured
        "Kowalski^Anna^Maria",  # middle name given by the PACS only
    ],
)
def test_demographic_auto_link(pn):
    m = matcher(
        r4(1, "Kowalski", "Anna"),
        r4(2, "Nowak", "Anna"),
        r4(3, "Kowalski", "Ewa", born=date(1975, 4, 3)),
    )
    d = m.match(pacs(pn))
    assert d.auto_linked, d
    assert d.r4_patient_id == 1
    assert d.rule is LinkRule.DEMOGRAPHICS
    assert d.reasons[0].startswith("only candidate above 0.93")


def test_accents_and_compound_names():
    m = matcher(r4(1, "García-López", "José"))
    assert m.match(pacs("GARCIA LOPEZ^JOSE")).r4_patient_id == 1
    assert m.match(pacs("Garcia^José")).r4_patient_id == 1  # one part of the compound
    m = matcher(r4(1, "Strauss", "Lukas"))
    assert m.match(pacs("Strauß^Łukas")).r4_patient_id == 1


def test_day_month_swapped_birth_date_goes_to_review():
    m = matcher(r4(1, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalski^Anna", born=date(1975, 2, 4)))
    assert_review(d, ReviewReason.BIRTH_DATE_NOT_EXACT)
    assert d.candidates[0].r4_patient_id == 1
    assert d.candidates[0].birth_date is BirthDateMatch.DAY_MONTH_SWAPPED
    assert "birth date day/month swapped" in d.candidates[0].reasons


def test_missing_birth_date_goes_to_review_with_candidate():
    m = matcher(r4(1, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalski^Anna", born=None))
    assert_review(d, ReviewReason.BIRTH_DATE_NOT_EXACT)
    assert d.candidates[0].r4_patient_id == 1  # found through the name block


def test_r4_patient_without_birth_date_is_found_but_not_linked():
    m = matcher(r4(1, "Kowalski", "Anna", born=None))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.BIRTH_DATE_NOT_EXACT)
    assert d.candidates[0].r4_patient_id == 1


def test_twins_never_auto_link():
    m = matcher(r4(1, "Kowalski", "Anna"), r4(2, "Kowalski", "Piotr", sex="M"))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.POSSIBLE_TWIN)
    assert d.candidates[0].r4_patient_id == 1


def test_twins_with_similar_names_never_auto_link():
    m = matcher(r4(1, "Kowalski", "Anna"), r4(2, "Kowalski", "Anne"))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.POSSIBLE_TWIN, ReviewReason.SEVERAL_ABOVE_THRESHOLD)


def test_same_name_same_birth_date_never_auto_links():
    m = matcher(r4(1, "Kowalski", "Anna"), r4(2, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.SEVERAL_ABOVE_THRESHOLD, ReviewReason.POSSIBLE_TWIN)
    assert [c.r4_patient_id for c in d.candidates] == [1, 2]


def test_twin_rule_sees_hyphenated_family_variant():
    m = matcher(r4(1, "Kowalski", "Anna"), r4(2, "Kowalski-Nowak", "Piotr", sex="M"))
    assert_review(m.match(pacs("Kowalski^Anna")), ReviewReason.POSSIBLE_TWIN)


def test_sex_mismatch_blocks_demographic_link_unless_allowed():
    record = r4(1, "Kowalski", "Anna")
    d = matcher(record).match(pacs("Kowalski^Anna", sex="M"))
    assert_review(d, ReviewReason.SEX_DIFFERS, ReviewReason.BELOW_THRESHOLD)
    allowed = Thresholds(allow_sex_mismatch=True, auto_link=0.90)
    assert matcher(record, thresholds=allowed).match(pacs("Kowalski^Anna", sex="M")).auto_linked


def test_unknown_sex_is_neutral():
    d = matcher(r4(1, "Kowalski", "Anna", sex=None)).match(pacs("Kowalski^Anna", sex=""))
    assert d.auto_linked


def test_given_name_initial_only_goes_to_review():
    d = matcher(r4(1, "Kowalski", "Anna")).match(pacs("Kowalski^A"))
    assert_review(d, ReviewReason.NAME_TOO_DIFFERENT)


def test_three_letter_given_name_typo_goes_to_review():
    d = matcher(r4(1, "Kowalski", "Tom", sex="M")).match(pacs("Kowalski^Tim", sex="M"))
    assert_review(d, ReviewReason.NAME_TOO_DIFFERENT)


def test_margin_too_small():
    # Two people born the same day with similar, not identical names: neither is clear.
    m = matcher(r4(1, "Kowalczyk", "Anna"), r4(2, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalsky^Anna"))
    assert_review(d, ReviewReason.MARGIN_TOO_SMALL)
    assert "margin 0.09 over the next is below 0.10" in d.reasons


def test_namesake_with_swapped_birth_date_goes_to_review():
    # Duplicate registration, or one side swapped day and month: nothing says which.
    m = matcher(r4(1, "Kowalski", "Anna", born=date(1975, 2, 4)), r4(2, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.POSSIBLE_NAMESAKE)
    assert [c.r4_patient_id for c in d.candidates] == [2, 1]


def test_namesake_without_birth_date_does_not_block_but_is_listed():
    m = matcher(r4(1, "Kowalski", "Anna", born=None), r4(2, "Kowalski", "Anna"))
    d = m.match(pacs("Kowalski^Anna"))
    assert d.r4_patient_id == 2
    assert [c.r4_patient_id for c in d.candidates] == [2, 1]


def test_unrelated_patient_without_birth_date_does_not_block():
    m = matcher(r4(1, "Kowalski", "Ewa", born=None), r4(2, "Kowalski", "Anna"))
    assert m.match(pacs("Kowalski^Anna")).r4_patient_id == 2


def test_margin_is_configurable():
    records = (r4(1, "Kowalski", "Anna"), r4(2, "Kowalski", "Johanna", born=date(1975, 2, 4)))
    assert matcher(*records).match(pacs("Kowalski^Anna")).auto_linked
    strict = Thresholds(margin=0.5)
    d = matcher(*records, thresholds=strict).match(pacs("Kowalski^Anna"))
    assert_review(d, ReviewReason.MARGIN_TOO_SMALL)


def test_no_candidate():
    d = matcher(r4(1, "Kowalski", "Anna")).match(pacs("Papadopoulos^Nikos", born=date(2001, 1, 1)))
    assert_review(d, ReviewReason.NO_CANDIDATE)
    assert d.candidates == ()


def test_empty_pacs_patient_goes_to_review():
    d = matcher(r4(1, "Kowalski", "Anna")).match(PacsPatient(""))
    assert_review(d, ReviewReason.NO_CANDIDATE)


def test_review_candidates_are_ranked_and_capped():
    records = [r4(i, "Kowalski", f"Anna{'x' * i}") for i in range(1, 9)]
    d = matcher(*records).match(pacs("Kowalski^Anna"))
    assert d.needs_review
    scores = [c.score for c in d.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len(d.candidates) <= Thresholds().max_review_candidates


def test_thresholds_validate():
    with pytest.raises(ValueError):
        Thresholds(auto_link=1.5)
    with pytest.raises(ValueError):
        Thresholds(margin=-0.1)


def test_review_decision_needs_a_reason():
    with pytest.raises(ValueError):
        MatchDecision.review("X", (), (), ())


def test_reasons_carry_no_patient_data():
    m = matcher(r4(1, "Kowalski", "Anna", chart="12345"), rules=[IdRule()])
    for d in (
        m.match(pacs("Kowalski^Anna")),
        m.match(pacs("Kowalsky^Anna", born=date(1975, 2, 4))),
        m.match(pacs("Smith^John", born=None, pid="12345")),
    ):
        texts = [*d.reasons, *(r for c in d.candidates for r in c.reasons)]
        joined = " ".join(texts).lower()
        for secret in ("kowal", "anna", "smith", "john", "1975", "12345"):
            assert secret not in joined, (secret, texts)
