"""Synthetic practice and PACS populations for tests, benchmarks and demos.

Every person here is invented (names drawn from common-name pools and a syllable generator,
birth dates uniform over 1930-2020); none is a real patient. Generation is seeded, so a failing
test always sees the same people.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from pacs.models import PacsPatient, PersonName
from r4.records import PatientRecord

FAMILY_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
    "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Evans",
    "O'Brien", "O'Connor", "McDonald", "MacLeod", "García", "Rodríguez", "Martínez", "Hernández",
    "López", "González", "Pérez", "Sánchez", "Ramírez", "Núñez", "Muñoz", "Peña", "Müller",
    "Schröder", "Schäfer", "Weiß", "Strauß", "Groß", "Köhler", "Böhm", "Jäger", "Łukasiewicz",
    "Wałęsa", "Kowalski", "Nowak", "Wiśniewski", "Dvořák", "Novák", "Černý", "Ødegaard",
    "Søren", "Bjørnstad", "Æbelø", "Lefèvre", "Dubois", "Moreau", "Girard", "Bérénger",
    "François", "van der Berg", "van Dijk", "de Vries", "de Jong", "van den Broek", "di Marco",
    "De Luca", "Rossi", "Russo", "Ferrari", "Esposito", "Nguyen", "Tran", "Le", "Pham", "Li",
    "Wang", "Zhang", "Chen", "Liu", "Kim", "Park", "Lee", "Ng", "Yılmaz", "Kaya", "Demir",
    "Şahin", "Öztürk", "Çelik", "Papadopoulos", "Ivanov", "Smirnov", "Petrov", "Horváth",
    "Nagy", "Szabó", "Tóth", "Kovač", "Hansen", "Johansson", "Karlsson", "Nilsson", "Virtanen",
    "Korhonen", "Mäkinen", "Silva", "Santos", "Oliveira", "Costa", "Gonçalves", "Ferreira",
)  # fmt: skip
GIVEN_FEMALE = (
    "Mary", "Anna", "Anne", "Emma", "Olivia", "Sophia", "Isabella", "Mia", "Charlotte", "Amelia",
    "Harper", "Evelyn", "Abigail", "Emily", "Elizabeth", "Sofia", "Ella", "Madison", "Scarlett",
    "Victoria", "Aria", "Grace", "Chloe", "Camila", "Penelope", "Riley", "Layla", "Lillian",
    "Nora", "Zoë", "Zoé", "Léa", "Chloé", "Inès", "Hélène", "Agnès", "Renée", "María", "José",
    "Lucía", "Sofía", "Martina", "Ángela", "Małgorzata", "Łucja", "Żaneta", "Jolanta",
    "Björk", "Åsa", "Sigríður", "Ingrid", "Saoirse", "Siobhán", "Aoife", "Mei", "Yan", "Ji-woo",
    "Hanna", "Johanna", "Katharina", "Jutta", "Anne-Marie", "Marie-Claire", "Ana", "Eva", "Ida",
)  # fmt: skip
GIVEN_MALE = (
    "James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward",
    "Jason", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen",
    "José", "Jesús", "Ramón", "Andrés", "Iñigo", "Óscar", "Jérôme", "François", "Benoît",
    "Jean-Pierre", "Jean-Luc", "Søren", "Bjørn", "Øyvind", "Jörg", "Jürgen", "Günther", "Paweł",
    "Łukasz", "Wojciech", "Tomáš", "Dušan", "Ömer", "Çağlar", "Şükrü", "Wei", "Jun", "Min-jun",
    "Tom", "Tim", "Max", "Ian", "Leo", "Sam", "Ben", "Al", "Bo",
)  # fmt: skip
# Twins often get related names; these make "given names differ a bit" twins.
SIMILAR_GIVEN = (
    ("Anna", "Anne"), ("Maria", "Marie"), ("Jon", "John"), ("Tom", "Tim"), ("Lena", "Lana"),
    ("Daniel", "Danielle"), ("Eric", "Erica"), ("Julian", "Juliana"), ("Mila", "Mina"),
)  # fmt: skip

_ONSETS = ("b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m",
           "n", "p", "pr", "r", "s", "sh", "st", "t", "tr", "v", "w", "z")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "y")
_CODAS = ("", "", "n", "r", "s", "l", "m", "nd", "rt", "st", "k", "x")
_ENDINGS = ("", "son", "sen", "er", "ek", "ski", "ova", "ez", "ini", "ard", "man", "berg")
_ACCENTED = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç", "s": "š"}
_EARLIEST = date(1930, 1, 1)
_SPAN_DAYS = (date(2020, 12, 31) - _EARLIEST).days


@dataclass(frozen=True)
class Person:
    family: str
    given: str
    birth_date: date
    sex: str


@dataclass(frozen=True)
class LabelledPacsPatient:
    """A PACS patient plus the truth about it (what the test checks the matcher against)."""

    patient: PacsPatient
    true_r4_id: int | None
    errors: tuple[str, ...]
    id_follows_rule: bool  # PatientID is the true R4 chart number in a rule-covered format


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.translate(str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O",
                                          "æ": "ae", "Æ": "Ae", "ı": "i"}))  # fmt: skip


class SyntheticPopulation:
    """Seeded source of invented people and of PACS views of them with clerical errors."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    # -- people ------------------------------------------------------------------------------

    def invented_name(self) -> str:
        rng = self.rng
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)]
        if rng.random() < 0.6:
            parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS))
        return ("".join(parts) + rng.choice(_ENDINGS)).capitalize()

    def family_name(self) -> str:
        rng = self.rng
        name = rng.choice(FAMILY_NAMES) if rng.random() < 0.45 else self.invented_name()
        if rng.random() < 0.08:
            other = rng.choice(FAMILY_NAMES) if rng.random() < 0.5 else self.invented_name()
            name = f"{name}{rng.choice(('-', ' '))}{other}"
        return name

    def given_name(self, sex: str) -> str:
        rng = self.rng
        pool = GIVEN_FEMALE if sex == "F" else GIVEN_MALE
        name = rng.choice(pool) if rng.random() < 0.6 else self.invented_name()
        if rng.random() < 0.08 and "-" not in name:
            name = f"{name} {rng.choice(pool)}"
        return name

    def birth_date(self) -> date:
        return _EARLIEST + timedelta(days=self.rng.randrange(_SPAN_DAYS))

    def person(self) -> Person:
        sex = self.rng.choice("MF")
        return Person(self.family_name(), self.given_name(sex), self.birth_date(), sex)

    def twins(self) -> tuple[Person, Person]:
        """Two people with the same family name and birth date (twins, or namesakes born the
        same day); given names sometimes differ by only a letter or two."""
        rng = self.rng
        first = self.person()
        if rng.random() < 0.4:
            a, b = rng.choice(SIMILAR_GIVEN)
            return (
                replace(first, given=a, sex=rng.choice("MF")),
                replace(first, given=b, sex=rng.choice("MF")),
            )
        sex = rng.choice("MF")
        given = self.given_name(sex)
        while given == first.given:
            given = self.given_name(sex)
        return first, replace(first, given=given, sex=sex)

    def record(self, r4_id: int, person: Person, chart: str | None) -> PatientRecord:
        rng = self.rng
        other_ids = (f"OLD{rng.randrange(10**6):06d}",) if rng.random() < 0.15 else ()
        return PatientRecord(
            id=r4_id,
            chart_number=chart,
            family_name=person.family,
            given_name=person.given,
            birth_date=person.birth_date if rng.random() > 0.01 else None,
            sex=person.sex if rng.random() > 0.03 else None,
            other_ids=other_ids,
        )

    def r4_records(self, count: int, first_id: int = 1) -> Iterator[PatientRecord]:
        """`count` plain R4 patients, streamed. Chart numbers are unique per population."""
        charts = self.rng.sample(range(1, 10_000_000), count)
        for offset in range(count):
            yield self.record(first_id + offset, self.person(), str(charts[offset]))

    # -- PACS views --------------------------------------------------------------------------

    def typo(self, text: str) -> str:
        rng = self.rng
        letters = [i for i, ch in enumerate(text) if ch.isalpha()]
        if len(letters) < 4:
            return text
        i = rng.choice(letters[1:-1]) if rng.random() < 0.8 else rng.choice(letters)
        kind = rng.choice(("sub", "del", "ins", "swap"))
        alphabet = "abcdefghijklmnopqrstuvwxyz"
        if kind == "sub":
            return text[:i] + rng.choice(alphabet.replace(text[i].lower(), "")) + text[i + 1 :]
        if kind == "del":
            return text[:i] + text[i + 1 :]
        if kind == "ins":
            return text[:i] + rng.choice(alphabet) + text[i:]
        j = i + 1 if i + 1 < len(text) and text[i + 1].isalpha() else i - 1
        a, b = sorted((i, j))
        if text[a] == text[b]:
            return text[:i] + rng.choice(alphabet.replace(text[i].lower(), "")) + text[i + 1 :]
        return text[:a] + text[b] + text[a] + text[b + 1 :]

    def add_accent(self, text: str) -> str:
        spots = [i for i, ch in enumerate(text) if ch in _ACCENTED]
        if not spots:
            return text
        i = self.rng.choice(spots)
        return text[:i] + _ACCENTED[text[i]] + text[i + 1 :]

    def pacs_view(
        self,
        record: PatientRecord,
        patient_id: str,
        issuer: str,
        id_follows_rule: bool,
        error_rate: float = 0.6,
    ) -> LabelledPacsPatient:
        """The PACS's version of `record`, with zero or more realistic clerical errors."""
        rng = self.rng
        family, given = record.family_name, record.given_name
        errors: list[str] = []
        if rng.random() < error_rate:
            kind = rng.choice(
                ("typo", "swap", "accents", "hyphen", "partial", "unstructured", "typo")
            )
            if kind == "typo":
                if rng.random() < 0.5:
                    family = self.typo(family)
                else:
                    given = self.typo(given)
            elif kind == "swap":
                family, given = given, family
            elif kind == "accents":
                folded_f, folded_g = ascii_fold(family), ascii_fold(given)
                if (folded_f, folded_g) != (family, given):
                    family, given, kind = folded_f, folded_g, "accents-dropped"
                else:
                    family, kind = self.add_accent(family), "accents-added"
            elif kind == "hyphen":
                if "-" in family or " " in family:
                    family = family.replace("-", " ") if "-" in family else family.replace(" ", "-")
                elif "-" in given or " " in given:
                    given = given.replace("-", " ") if "-" in given else given.replace(" ", "-")
                else:
                    kind = "none"
            elif kind == "partial":
                parts = family.replace("-", " ").split()
                if len(parts) > 1 and parts[0].lower() not in ("van", "de", "di"):
                    family = parts[0]
                elif len(given.replace("-", " ").split()) > 1:
                    given = given.replace("-", " ").split()[0]
                else:
                    kind = "none"
            if kind != "none":
                errors.append(kind)
        birth: date | None = record.birth_date
        roll = rng.random()
        if birth is not None and roll < 0.07 and birth.day <= 12 and birth.day != birth.month:
            birth = date(birth.year, birth.day, birth.month)
            errors.append("birth-date-swapped")
        elif roll > 0.90:
            birth = None
            errors.append("birth-date-missing")
        sex = record.sex or ""
        if rng.random() < 0.15:
            sex = ""
            errors.append("sex-missing")
        # "unstructured": the whole name typed into one PN component, no ^ separator.
        pn = f"{family} {given}" if "unstructured" in errors else f"{family}^{given}"
        if rng.random() < 0.5:
            pn = pn.upper()  # many modalities send upper-case names
        patient = PacsPatient(
            patient_id=patient_id,
            name=PersonName.parse(pn),
            birth_date=birth,
            sex=sex,
            issuer_of_patient_id=issuer,
        )
        return LabelledPacsPatient(patient, record.id, tuple(errors), id_follows_rule)

    def rule_style_id(self, chart: str) -> str:
        """The chart number as a PACS might carry it under the rule `IdRule(prefix="R4-",
        pad_width=8)`: with or without the prefix and the zero padding."""
        return self.rng.choice((f"R4-{chart.zfill(8)}", chart, f"R4-{chart}", chart.zfill(8)))

    def foreign_id(self) -> str:
        return f"EXT{self.rng.randrange(10**8):08d}"


@dataclass
class LabelledSet:
    records: list[PatientRecord]
    pacs: list[LabelledPacsPatient]
    # R4 ids that share birth date and folded family name with another R4 patient.
    twin_ids: frozenset[int]


def labelled_set(
    seed: int,
    plain: int = 4000,
    derived: int = 2000,
    twin_pairs: int = 60,
    namesake_pairs: int = 40,
    unknown: int = 400,
    colliding_ids: int = 30,
) -> LabelledSet:
    """R4 patients and PACS patients derived from some of them, with the truth attached.

    - `derived` PACS patients come from plain R4 patients, with clerical errors (`pacs_view`);
      about 35 % carry the chart number in a rule-covered format, the rest an outside id.
    - one of each twin pair (same family + birth date, different given) and of each namesake
      pair (same full name + birth date, unrelated) also appears in the PACS;
    - `unknown` PACS patients have no R4 counterpart; `colliding_ids` of them carry an id equal
      to some R4 chart number (a different person: the id-rule contradiction case). Unknown
      people are redrawn until no R4 patient shares their birth date and a name part, so the
      truth ("nobody") is not itself ambiguous.
    """
    from gateway.matching.normalize import fold_text

    pop = SyntheticPopulation(seed)
    rng = pop.rng
    records = list(pop.r4_records(plain))
    charts = rng.sample(range(10_000_000, 20_000_000), 2 * (twin_pairs + namesake_pairs))
    next_id = plain + 1
    pairs: list[tuple[PatientRecord, PatientRecord]] = []
    for i in range(twin_pairs + namesake_pairs):
        if i < twin_pairs:
            a, b = pop.twins()
        else:
            a = pop.person()
            b = a
        ra = pop.record(next_id, a, str(charts[2 * i]))
        rb = pop.record(next_id + 1, b, str(charts[2 * i + 1]))
        next_id += 2
        records += [ra, rb]
        pairs.append((ra, rb))

    by_birth_family: dict[tuple[date | None, str], list[int]] = {}
    for r in records:
        if r.birth_date is None:
            continue
        by_birth_family.setdefault((r.birth_date, fold_text(r.family_name)), []).append(r.id)
    twin_ids = frozenset(i for ids in by_birth_family.values() if len(ids) > 1 for i in ids)

    def view(record: PatientRecord) -> LabelledPacsPatient:
        if rng.random() < 0.35 and record.chart_number:
            return pop.pacs_view(record, pop.rule_style_id(record.chart_number), "", True)
        return pop.pacs_view(record, pop.foreign_id(), "OUTSIDE", False)

    pacs = [view(r) for r in rng.sample(records[:plain], derived)]
    pacs += [view(rng.choice(pair)) for pair in pairs]

    taken = {(r.birth_date, fold_text(r.family_name)) for r in records}
    taken |= {(r.birth_date, fold_text(r.given_name)) for r in records}
    for i in range(unknown):
        person = pop.person()
        while (person.birth_date, fold_text(person.family)) in taken or (
            person.birth_date,
            fold_text(person.given),
        ) in taken:
            person = pop.person()
        stranger = pop.record(0, person, None)
        if i < colliding_ids:
            victim = rng.choice(records[:plain])
            while victim.birth_date == person.birth_date:
                victim = rng.choice(records[:plain])
            labelled = pop.pacs_view(stranger, victim.chart_number or "", "", False, 0.0)
        else:
            labelled = pop.pacs_view(stranger, pop.foreign_id(), "OUTSIDE", False)
        pacs.append(replace(labelled, true_r4_id=None))
    rng.shuffle(pacs)
    return LabelledSet(records, pacs, twin_ids)
