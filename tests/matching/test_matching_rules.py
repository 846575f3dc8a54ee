import pytest

from gateway.matching import IdRule, InMemoryLinks, LinkLookup, NoLinks, loose_id_key


def test_in_memory_links_are_keyed_by_id_and_issuer():
    links = InMemoryLinks({("123", "HOSP"): 7})
    links.add("456", "", 8)
    assert isinstance(links, LinkLookup)
    assert links.r4_patient_for("123", "HOSP") == 7
    assert links.r4_patient_for(" 123 ", "HOSP ") == 7
    assert links.r4_patient_for("123", "OTHER") is None
    assert links.r4_patient_for("123", "") is None
    assert links.r4_patient_for("456", "") == 8
    assert len(links) == 2
    assert NoLinks().r4_patient_for("123", "HOSP") is None


@pytest.mark.parametrize(
    ("value", "key"), [("00123", "123"), ("ABC", "abc"), (" 0 ", "0"), ("000", "0"), ("", "")]
)
def test_loose_id_key(value, key):
    assert loose_id_key(value) == key


def test_plain_rule_is_exact_apart_from_case_and_spaces():
    rule = IdRule()
    assert rule.pacs_key(" ab12 ") == rule.r4_key("AB12")
    assert rule.pacs_key("0012") != rule.r4_key("12")
    assert rule.pacs_key("") is None
    assert rule.r4_key(None) is None


def test_case_sensitive_rule():
    rule = IdRule(case_insensitive=False)
    assert rule.pacs_key("ab12") != rule.r4_key("AB12")


@pytest.mark.parametrize("pacs_id", ["R4-00012345", "r4-00012345", "12345", "R4-12345", "00012345"])
def test_prefix_and_padding_rule(pacs_id):
    rule = IdRule(prefix="R4-", pad_width=8)
    assert rule.pacs_key(pacs_id) == rule.r4_key("12345")


def test_padding_rule_does_not_truncate_longer_ids():
    rule = IdRule(pad_width=4)
    assert rule.pacs_key("000012") != rule.r4_key("12")


def test_required_prefix():
    rule = IdRule(prefix="R4-", require_affixes=True)
    assert rule.pacs_key("R4-12345") == "12345"
    assert rule.pacs_key("12345") is None
    assert rule.pacs_key("R4-") is None


def test_suffix_rule():
    rule = IdRule(suffix="/A")
    assert rule.pacs_key("12345/A") == rule.r4_key("12345")


def test_strip_leading_zeros():
    rule = IdRule(strip_leading_zeros=True)
    assert rule.pacs_key("000777") == rule.r4_key("777") == "777"
    assert rule.pacs_key("0") == "0"


def test_issuer_filter_and_other_ids():
    rule = IdRule(issuers=("HOSP", ""), use_pacs_other_ids=True)
    assert rule.applies_to_issuer("HOSP")
    assert rule.applies_to_issuer("")
    assert not rule.applies_to_issuer("ELSEWHERE")
    assert rule.pacs_ids("1", ("2", "", "1")) == ("1", "2")
    assert IdRule().pacs_ids("1", ("2",)) == ("1",)


def test_rule_needs_something_to_compare_with():
    with pytest.raises(ValueError):
        IdRule(match_chart_number=False, match_r4_other_ids=False)
    with pytest.raises(ValueError):
        IdRule(pad_width=0)
