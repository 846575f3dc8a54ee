"""Which storage SOP classes to propose for a C-GET when the PACS did not say.

Some PACS (DCMTK's dcmqrscp) answer IMAGE-level C-FIND without SOPClassUID. A C-GET must
still propose a storage context for every class the study holds, or the PACS cannot send
those images at all. The series' Modality narrows it down; when it does not, a broad set
of the common classes is used. Everything here fits one association (128 contexts).
"""

from __future__ import annotations

from pydicom.uid import UID

_CT = ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1")
_MR = ("1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1")
_CR = ("1.2.840.10008.5.1.4.1.1.1",)
_DX = ("1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1")
_IO = ("1.2.840.10008.5.1.4.1.1.1.3", "1.2.840.10008.5.1.4.1.1.1.3.1")
_MG = ("1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1")
_US = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1")
_NM = ("1.2.840.10008.5.1.4.1.1.20",)
_PT = ("1.2.840.10008.5.1.4.1.1.128",)
_XA = ("1.2.840.10008.5.1.4.1.1.12.1",)
_RF = ("1.2.840.10008.5.1.4.1.1.12.2",)
_SC = (
    "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1",
    "1.2.840.10008.5.1.4.1.1.7.2",
    "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4",
)
_VL = ("1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.77.1.1")
_SR = (
    "1.2.840.10008.5.1.4.1.1.88.11",
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33",
)
_KO = ("1.2.840.10008.5.1.4.1.1.88.59",)
_PR = ("1.2.840.10008.5.1.4.1.1.11.1",)
_DOC = ("1.2.840.10008.5.1.4.1.1.104.1",)
_SEG = ("1.2.840.10008.5.1.4.1.1.66.4",)
_CBCT_3D = ("1.2.840.10008.5.1.4.1.1.13.1.3",)  # X-Ray 3D Craniofacial

BY_MODALITY: dict[str, tuple[str, ...]] = {
    "CT": _CT + _CBCT_3D,
    "MR": _MR,
    "CR": _CR,
    "DX": _DX,
    "PX": _DX,
    "IO": _IO,
    "MG": _MG,
    "US": _US,
    "NM": _NM,
    "PT": _PT,
    "XA": _XA,
    "RF": _RF,
    "OT": _SC,
    "SC": _SC,
    "XC": _VL,
    "ES": ("1.2.840.10008.5.1.4.1.1.77.1.1",),
    "SR": _SR,
    "KO": _KO,
    "PR": _PR,
    "DOC": _DOC,
    "SEG": _SEG,
}
# Every modality may also carry secondary captures (screenshots, scanned forms).
ALWAYS = _SC

BROAD: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            *_CT,
            *_MR,
            *_CR,
            *_DX,
            *_IO,
            *_MG,
            *_US,
            *_NM,
            *_PT,
            *_XA,
            *_RF,
            *_SC,
            *_VL,
            *_CBCT_3D,
            *_SR,
            *_KO,
            *_PR,
            *_DOC,
            *_SEG,
        )
    )
)


def implied_by(modality: str) -> tuple[str, ...] | None:
    """The classes a series of `modality` is expected to hold, or None if we cannot tell."""
    classes = BY_MODALITY.get(modality.strip().upper())
    return None if classes is None else tuple(dict.fromkeys((*classes, *ALWAYS)))


def class_name(uid: str) -> str:
    """'MR Image Storage' for a known class, else the UID itself."""
    name = UID(uid).name
    return name if name and name != uid else uid
