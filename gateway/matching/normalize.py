"""Normalisation of names, birth dates and sex codes, shared by the index and the scorer.

Everything here is pure and deterministic: the index normalises R4 patients once at build time
and the matcher normalises each PACS patient once per query, so both sides always agree.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from pacs.models import PersonName

# Letters that NFKD leaves whole (they are not "letter + combining mark"), so stripping marks
# alone would keep them and "Strauß" would never meet "Strauss".
_FOLD_MAP = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "ł": "l",
        "Ł": "l",
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
        "ħ": "h",
        "Ħ": "h",
        "ŀ": "l",
        "Ŀ": "l",
        "ŧ": "t",
        "Ŧ": "t",
    }
)
# Apostrophes vanish ("O'Brien" = "OBrien"); everything else that separates name parts
# (hyphens of every kind, DICOM ^ and =, dots, commas, slashes) becomes a space, so
# "Garcia-Lopez" and "Garcia Lopez" give the same tokens.
_APOSTROPHES = re.compile(r"['`´ʼ’‘]")
# Unicode-aware: letters of other scripts stay (not transliterated), so a Cyrillic or Greek
# name still compares with itself instead of folding to nothing.
_SEPARATORS = re.compile(r"[\W_]+")

# Name particles stay in the tokens (they are part of the name and help scoring) but are left
# out of blocking keys, where "van" or "de" would put half a Dutch practice in one block.
PARTICLES = frozenset(
    {
        "van", "von", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "du",
        "la", "le", "ten", "ter", "zu", "bin", "ben", "ibn", "al", "el", "y", "e", "st",
    }
)  # fmt: skip


@lru_cache(maxsize=65536)
def fold_text(text: str) -> str:
    """Lower-case ASCII-ish form of a name part: accents stripped, separators unified.

    Cached because practice populations repeat the same few thousand names over and over.
    """
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_MAP))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # casefold after stripping: it maps the remaining ß-like cases and Greek/Cyrillic case.
    lowered = _APOSTROPHES.sub("", stripped.translate(_FOLD_MAP).casefold())
    return " ".join(_SEPARATORS.sub(" ", lowered).split())


def name_tokens(text: str) -> tuple[str, ...]:
    """The tokens of one name field after folding."""
    folded = fold_text(text)
    return tuple(folded.split()) if folded else ()


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """Family and given names as space-joined folded tokens.

    `given` includes DICOM middle names: R4 keeps them in the given-name field, PACS in the
    third PN component, so they must be merged to compare like with like. Prefix and suffix
    (Dr, Jr) are dropped: they are titles, not identity.
    """

    family: str
    given: str

    @property
    def family_tokens(self) -> tuple[str, ...]:
        return tuple(self.family.split())

    @property
    def given_tokens(self) -> tuple[str, ...]:
        return tuple(self.given.split())

    @property
    def is_empty(self) -> bool:
        return not self.family and not self.given


def normalize_name(
    family: str | None, given: str | None, middle: str | None = ""
) -> NormalizedName:
    """Normalise separate family / given (/ middle) fields."""
    given_all = " ".join(p for p in (fold_text(given or ""), fold_text(middle or "")) if p)
    return NormalizedName(fold_text(family or ""), given_all)


def normalize_person_name(name: PersonName | str) -> NormalizedName:
    """Normalise a DICOM PN, either parsed or as the raw `Family^Given^Middle^Prefix^Suffix`."""
    pn = PersonName.parse(name) if isinstance(name, str) else name
    return normalize_name(pn.family, pn.given, pn.middle)


_SEX_CODES = {
    "m": "M",
    "male": "M",
    "f": "F",
    "female": "F",
    "w": "F",  # German/Dutch practice systems ("weiblich", "vrouw")
}


def normalize_sex(value: str | None) -> str | None:
    """ "M", "F" or None.

    DICOM "O" (other) is treated as unknown: many PACS use it as "not recorded", so it is
    neither evidence for nor against a match.
    """
    if not value:
        return None
    return _SEX_CODES.get(value.strip().casefold())


# Dates practice and PACS software use for "unknown". Treating them as real would put every
# unknown-birth-date patient in one block and let them "match" each other exactly.
PLACEHOLDER_BIRTH_DATES = frozenset({date(1900, 1, 1), date(1899, 12, 31), date(1, 1, 1)})
_DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d")


def normalize_birth_date(value: date | str | None) -> date | None:
    """A usable birth date or None (missing, unparseable, or a known placeholder)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        text = value.strip()
        for fmt in _DATE_FORMATS:
            try:
                value = datetime.strptime(text, fmt).date()
                break
            except ValueError:
                continue
        else:
            return None
    return None if value in PLACEHOLDER_BIRTH_DATES else value


def swap_day_month(value: date) -> date | None:
    """The same date with day and month exchanged, or None when that is no other valid date."""
    if value.day == value.month or value.day > 12:
        return None
    return date(value.year, value.day, value.month)


_SOUNDEX_CODES = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


@lru_cache(maxsize=65536)
def soundex(token: str) -> str:
    """American Soundex of one folded token (4 characters), used only as a blocking key.

    Written here rather than pulled from a phonetics library: it is twenty lines, and only its
    coarseness matters (spelling variants land in one block; the scorer decides the rest).
    """
    letters = "".join(ch for ch in token if "a" <= ch <= "z")
    if not letters:
        return token[:4]
    first = letters[0]
    out = []
    last = first.translate(_SOUNDEX_CODES)
    for ch in letters[1:]:
        code = ch.translate(_SOUNDEX_CODES)
        if code.isdigit():
            if code != last:
                out.append(code)
            last = code
        elif ch not in "hw":  # h and w do not separate equal codes; vowels do
            last = ""
    return (first + "".join(out) + "000")[:4]


def blocking_tokens(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Soundex keys of the non-particle tokens (all tokens if they are all particles)."""
    core = [t for t in tokens if t not in PARTICLES and len(t) > 1] or list(tokens)
    return tuple(dict.fromkeys(soundex(t) for t in core))
