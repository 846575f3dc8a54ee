"""Deterministic synthetic DICOM studies for tests and the demo PACS.

Every person here is invented. UIDs are derived from fixed strings, and pixel
noise from fixed seeds, so two runs write identical files. The data set covers
what the gateway has to cope with: Latin-1 and UTF-8 names, a compound name,
one person under two PatientIDs, twins, dental and general modalities, a
multi-series study, an RLE-compressed series and a MONOCHROME1 series.

    python orthanc-test/demo_studies.py OUT_DIR
"""

from __future__ import annotations

import argparse
import subprocess
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import read_file_meta_info
from pydicom.uid import (
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalIntraOralXRayImageStorageForPresentation,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pynetdicom import AE, build_context
from pynetdicom.presentation import PresentationContext

UID_ENTROPY = "pacs-gateway synthetic demo data v1"
MANUFACTURER = "pacs-gateway demo generator"

# Identifiers later tests refer to by role rather than by value.
LATIN1_PATIENT_ID = "R4-1001"
UTF8_PATIENT_ID = "R4-1002"
SAME_PERSON_IDS = ("R4-1003", "EXT-77812")
COMPOUND_NAME_PATIENT_ID = "R4-1004"
TWIN_IDS = ("R4-1005", "R4-1006")

Image = np.ndarray


# -- catalog ----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPatient:
    patient_id: str
    name: str  # DICOM PN, e.g. "Müller^Zoë"
    birth_date: str  # YYYYMMDD
    sex: str
    charset: str | None  # SpecificCharacterSet of this patient's files; None = default
    issuer: str  # IssuerOfPatientID: whose id space patient_id belongs to


@dataclass(frozen=True)
class DemoInstance:
    sop_instance_uid: str
    path: Path


@dataclass(frozen=True)
class DemoSeries:
    series_uid: str
    number: int
    modality: str
    description: str
    sop_class_uid: str
    transfer_syntax_uid: str
    photometric: str
    instances: tuple[DemoInstance, ...]

    @property
    def sop_instance_uids(self) -> list[str]:
        return [i.sop_instance_uid for i in self.instances]

    @property
    def files(self) -> list[Path]:
        return [i.path for i in self.instances]


@dataclass(frozen=True)
class DemoStudy:
    key: str  # short stable name for tests, e.g. "dubois-ext-cbct"
    study_uid: str
    patient_id: str
    date: str  # YYYYMMDD
    time: str
    description: str
    accession: str
    series: tuple[DemoSeries, ...]

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset(s.modality for s in self.series)

    @property
    def sop_class_uids(self) -> frozenset[str]:
        return frozenset(s.sop_class_uid for s in self.series)

    @property
    def instance_count(self) -> int:
        return sum(len(s.instances) for s in self.series)

    @property
    def sop_instance_uids(self) -> list[str]:
        return [uid for s in self.series for uid in s.sop_instance_uids]

    @property
    def files(self) -> list[Path]:
        return [path for s in self.series for path in s.files]


@dataclass(frozen=True)
class DemoCatalog:
    root: Path
    patients: tuple[DemoPatient, ...]
    studies: tuple[DemoStudy, ...]

    @property
    def instance_count(self) -> int:
        return sum(s.instance_count for s in self.studies)

    @property
    def files(self) -> list[Path]:
        return [path for s in self.studies for path in s.files]

    def patient(self, patient_id: str) -> DemoPatient:
        return next(p for p in self.patients if p.patient_id == patient_id)

    def study(self, key_or_uid: str) -> DemoStudy:
        return next(s for s in self.studies if key_or_uid in (s.key, s.study_uid))

    def studies_for(self, patient_id: str) -> list[DemoStudy]:
        return [s for s in self.studies if s.patient_id == patient_id]

    def instance(self, sop_instance_uid: str) -> DemoInstance:
        return next(
            i
            for s in self.studies
            for se in s.series
            for i in se.instances
            if i.sop_instance_uid == sop_instance_uid
        )


# -- what to generate ---------------------------------------------------------------

PRACTICE = "R4PRACTICE"
OUTSIDE = "NORTHSIDE-RADIOLOGY"

PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(LATIN1_PATIENT_ID, "Müller^Zoë", "19840312", "F", "ISO_IR 100", PRACTICE),
    DemoPatient(UTF8_PATIENT_ID, "Łukasiewicz^Małgorzata", "19900721", "F", "ISO_IR 192", PRACTICE),
    DemoPatient(SAME_PERSON_IDS[0], "Dubois^Jean-Pierre", "19751105", "M", None, PRACTICE),
    DemoPatient(SAME_PERSON_IDS[1], "Dubois^Jean-Pierre", "19751105", "M", None, OUTSIDE),
    # Compound family name, two given names, born on a leap day.
    DemoPatient(
        COMPOUND_NAME_PATIENT_ID, "van der Berg-Smit^Anne Marie", "19680229", "F", None, PRACTICE
    ),
    DemoPatient(TWIN_IDS[0], "Okafor^Chidi", "20120509", "M", None, PRACTICE),
    DemoPatient(TWIN_IDS[1], "Okafor^Chinedu", "20120509", "M", None, PRACTICE),
)


@dataclass(frozen=True)
class SeriesSpec:
    kind: str  # key of IMAGE_KINDS
    count: int
    description: str
    compressed: bool = False


@dataclass(frozen=True)
class StudySpec:
    key: str
    patient_id: str
    date: str
    time: str
    description: str
    series: tuple[SeriesSpec, ...]
    institution: str = "Riverside Dental Practice"


def study_specs(ct_slices: int) -> tuple[StudySpec, ...]:
    io, px = SeriesSpec("IO", 4, "Bitewings"), SeriesSpec("PX", 1, "Panoramic")
    return (
        StudySpec(
            "muller-io-2021", LATIN1_PATIENT_ID, "20210615", "093000", "Intraoral bitewings", (io,)
        ),
        StudySpec("muller-px-2023", LATIN1_PATIENT_ID, "20230202", "141500", "Panoramic", (px,)),
        StudySpec(
            "lukasiewicz-io-2022",
            UTF8_PATIENT_ID,
            "20221108",
            "101000",
            "Intraoral periapicals",
            (SeriesSpec("IO", 3, "Periapicals"),),
        ),
        StudySpec(
            "lukasiewicz-cr-2020",
            UTF8_PATIENT_ID,
            "20200317",
            "084500",
            "Skull radiograph",
            (SeriesSpec("CR", 2, "Skull PA and lateral"),),
            institution="City Hospital Radiology",
        ),
        StudySpec("dubois-px-2022", SAME_PERSON_IDS[0], "20220905", "160000", "Panoramic", (px,)),
        StudySpec(
            "dubois-io-2024",
            SAME_PERSON_IDS[0],
            "20240110",
            "110000",
            "Intraoral bitewings",
            (SeriesSpec("IO", 2, "Bitewings"),),
        ),
        StudySpec(
            "dubois-ext-cbct-2023",
            SAME_PERSON_IDS[1],
            "20230418",
            "090000",
            "CBCT maxilla and mandible",
            (SeriesSpec("CT", ct_slices, "CBCT 0.3 mm"),),
            institution="Northside Radiology",
        ),
        StudySpec(
            "dubois-ext-mr-2024",
            SAME_PERSON_IDS[1],
            "20240520",
            "130000",
            "MR temporomandibular joints",
            (
                SeriesSpec("MR-T1", 20, "T1 sagittal"),
                SeriesSpec("MR-T2", 16, "T2 sagittal RLE", compressed=True),
                SeriesSpec("MR-PD", 16, "PD coronal"),
            ),
            institution="Northside Radiology",
        ),
        StudySpec(
            "vanderberg-visit-2019",
            COMPOUND_NAME_PATIENT_ID,
            "20191021",
            "103000",
            "Panoramic and bitewings",
            (px, SeriesSpec("IO", 2, "Bitewings")),
        ),
        StudySpec("okafor-chidi-px-2024", TWIN_IDS[0], "20240812", "100000", "Panoramic", (px,)),
        StudySpec("okafor-chinedu-px-2024", TWIN_IDS[1], "20240812", "101500", "Panoramic", (px,)),
    )


# -- pixel content --------------------------------------------------------------------
# Cheap phantoms: a few masks, a gradient and noise. Enough for previews and
# windowing to show structure; nobody should mistake them for anatomy.


def _grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.ogrid[-1.0 : 1.0 : rows * 1j, -1.0 : 1.0 : cols * 1j]
    return y.astype(np.float32), x.astype(np.float32)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def _to_uint(image: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(image, 0, 2**bits - 1).astype(np.uint16)


def intraoral(rng: np.random.Generator, index: int) -> Image:
    """Two or three teeth on a sensor, 12 bits stored; teeth are bright."""
    rows, cols = 1300, 1000
    y, x = _grid(rows, cols)
    image = 600 + 300 * (y + 1) + 80 * x  # exposure falls off across the sensor
    for k, centre in enumerate((-0.55, 0.0, 0.55)[: 2 + index % 2]):
        cx = centre + 0.05 * np.sin(index + k)
        crown = ((x - cx) / 0.27) ** 2 + ((y + 0.35) / 0.3) ** 2 < 1
        root = (np.abs(x - cx) < 0.12 * (1 - (y - 0.05) / 1.2)) & (y > -0.2) & (y < 0.85)
        pulp = (np.abs(x - cx) < 0.03) & (y > -0.4) & (y < 0.75)
        image = image + 1800 * crown + 1300 * (root & ~crown) - 700 * pulp
    image = image + _noise(rng, (rows, cols), 60)
    return _to_uint(image, 12)


def panoramic(rng: np.random.Generator, index: int) -> Image:
    """A jaw arch with a row of teeth across a wide detector, 16 bits."""
    rows, cols = 1400, 2900
    y, x = _grid(rows, cols)
    arch = 0.45 * x**2 - 0.1
    band = np.abs(y - arch) < 0.22
    teeth = band & (np.cos(x * (32 + index) * np.pi / 2) > -0.2) & (np.abs(y - arch) < 0.15)
    image = 9000 + 6000 * (1 - np.abs(x)) + 3000 * y
    image = image + 16000 * band + 20000 * teeth
    image = image + _noise(rng, (rows, cols), 900)
    return _to_uint(image, 16)


def skull_radiograph(rng: np.random.Generator, index: int) -> Image:
    """Skull outline as "brightness", 12 bits; the caller inverts for MONOCHROME1."""
    rows, cols = 2000, 1600
    y, x = _grid(rows, cols)
    r = (x / (0.72 - 0.1 * index)) ** 2 + (y / 0.85) ** 2
    image = 300 + 200 * (1 - y) + 900 * (r < 1) + 1800 * ((r < 1) & (r > 0.8))
    jaw = (np.abs(y - 0.75) < 0.1) & (np.abs(x) < 0.45)
    image = image + 1500 * jaw + _noise(rng, (rows, cols), 70)
    return _to_uint(image, 12)


def mr_slice(rng: np.random.Generator, index: int, *, contrast: float) -> Image:
    """A head in 256x256; contrast swaps grey/white brightness between series."""
    rows = cols = 256
    y, x = _grid(rows, cols)
    scale = 1 - 0.5 * ((index - 10) / 12) ** 2
    head = (x / (0.8 * scale)) ** 2 + (y / (0.9 * scale)) ** 2
    brain = head < 0.75
    condyle = ((x - 0.4) / 0.12) ** 2 + ((y - 0.3) / 0.08) ** 2 < 1
    image = 200 * (head < 1) + contrast * 900 * brain + (1 - contrast) * 700 * condyle
    image = image + 150 * (y + 1) * (head < 1) + np.abs(_noise(rng, (rows, cols), 25))
    return _to_uint(image, 12)


class CTPhantom:
    """A CBCT head in 512x512 HU slices, built once and varied cheaply per slice.

    Stored values are signed with RescaleIntercept -1024; outside the
    reconstruction circle they are -2000 (HU -3024), as many CBCT units write.
    """

    size = 512
    intercept = -1024

    def __init__(self, slices: int, rng: np.random.Generator) -> None:
        self.slices = slices
        y, x = _grid(self.size, self.size)
        self.x2, self.y2, self.y = x * x, y * y, y
        self.fov = self.x2 + self.y2 < 0.98
        # A small noise bank, rolled per slice: generating fresh noise for
        # every slice would dominate generation time.
        self.noise = [_noise(rng, (self.size, self.size), 30) for _ in range(4)]

    def slice_hu(self, index: int) -> np.ndarray:
        z = 2 * index / max(self.slices - 1, 1) - 1  # -1 = chin, +1 = top
        scale = float(np.sqrt(max(1 - 0.7 * z * z, 0.05)))
        a2, b2 = (0.8 * scale) ** 2, (0.9 * scale) ** 2
        head = self.x2 / a2 + self.y2 / b2
        hu = np.full((self.size, self.size), -1000, dtype=np.float32)
        hu[head < 1] = 40
        hu[(head < 1) & (head > 0.82)] = 1400  # cortical bone
        if z < 0.1:  # dental arch in the lower half of the volume
            arch = np.abs(self.y + 0.55 - 0.9 * self.x2) < 0.07
            teeth = arch & (np.cos(np.sqrt(self.x2) * 40) > 0) & (head < 0.8)
            hu[arch & (head < 0.8)] = 900
            hu[teeth] = 2500  # enamel
        airway = self.x2 / 0.01 + (self.y - 0.25) ** 2 / 0.01 < 1
        hu[airway] = -1000
        noise = np.roll(self.noise[index % 4], index * 7, axis=1)
        stored = hu + noise - self.intercept
        stored[~self.fov] = -2000
        return stored.astype(np.int16)


# -- datasets ---------------------------------------------------------------------------


def uid(*parts: object) -> UID:
    """A UID that depends only on ``parts``: reruns reproduce it."""
    return generate_uid(entropy_srcs=[UID_ENTROPY, *map(str, parts)])


def _base_dataset(
    patient: DemoPatient, study: StudySpec, study_uid: str, sop_class: str, modality: str
) -> Dataset:
    ds = Dataset()
    if patient.charset:
        ds.SpecificCharacterSet = patient.charset
    ds.SOPClassUID = sop_class
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = patient.issuer
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study.date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = study.time
    ds.AccessionNumber = accession_number(study)
    ds.StudyID = study.key[-4:]
    ds.StudyDescription = study.description
    ds.ReferringPhysicianName = "Demo^Referrer"
    ds.InstitutionName = study.institution
    ds.Manufacturer = MANUFACTURER
    ds.Modality = modality
    return ds


def accession_number(study: StudySpec) -> str:
    prefix = "NR" if study.institution == "Northside Radiology" else "A"
    return f"{prefix}{study.date[2:]}{abs(hash_key(study.key)) % 1000:03d}"


def hash_key(key: str) -> int:
    # Python's hash() is salted per process; CRC-32 is stable across runs.
    return zlib.crc32(key.encode())


def _set_pixels(ds: Dataset, image: np.ndarray, bits_stored: int, photometric: str) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = image.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if image.dtype.kind == "i" else 0
    ds.PixelData = image.tobytes()


@dataclass
class _Kind:
    modality: str
    sop_class: str
    make: Callable[[np.random.Generator, int], Image] | None  # None: the CT phantom
    bits_stored: int
    photometric: str = "MONOCHROME2"
    window: tuple[float, float] = (2048, 4096)
    extra: Callable[[Dataset, int], None] = field(default=lambda ds, i: None)


def _dx_attributes(ds: Dataset, index: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.ImagerPixelSpacing = [0.02, 0.02] if ds.Modality == "IO" else [0.1, 0.1]
    ds.PatientOrientation = ["L", "F"] if ds.Modality == "PX" else ["", ""]
    ds.BodyPartExamined = "JAW"
    ds.BurnedInAnnotation = "NO"
    ds.DetectorType = "SCINTILLATOR"
    ds.KVP = 65 if ds.Modality == "IO" else 70


def _cr_attributes(ds: Dataset, index: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "SKULL"
    ds.ViewPosition = ("PA", "LL")[index % 2]
    ds.PixelSpacing = [0.15, 0.15]
    ds.KVP = 75


def _mr_attributes(ds: Dataset, index: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence, ds.SequenceVariant = "SE", "NONE"
    ds.ScanOptions, ds.MRAcquisitionType = "", "2D"
    ds.EchoTime, ds.RepetitionTime = (12, 500) if "T1" in ds.SeriesDescription else (90, 3000)
    ds.EchoTrainLength, ds.MagneticFieldStrength = 1, 1.5
    ds.SliceThickness, ds.SpacingBetweenSlices = 3.0, 3.3
    ds.PixelSpacing = [0.6, 0.6]
    coronal = "coronal" in ds.SeriesDescription
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1] if coronal else [0, 1, 0, 0, 0, -1]
    ds.ImagePositionPatient = [-30.0 + 3.3 * index, -77.0, 77.0]
    ds.SliceLocation = -30.0 + 3.3 * index
    ds.BodyPartExamined = "TMJ"


def _ct_attributes(ds: Dataset, index: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = CTPhantom.intercept, 1, "HU"
    ds.KVP = 90
    ds.SliceThickness = 0.3
    ds.PixelSpacing = [0.3, 0.3]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-76.8, -76.8, -36.0 + 0.3 * index]
    ds.SliceLocation = -36.0 + 0.3 * index
    ds.BodyPartExamined = "JAW"
    ds.AcquisitionNumber = 1


def _invert_12(make: Callable[[np.random.Generator, int], Image]) -> Callable[..., Image]:
    # MONOCHROME1 stores bone (bright on screen) as low values.
    def inverted(rng: np.random.Generator, index: int) -> Image:
        return (4095 - make(rng, index)).astype(np.uint16)

    return inverted


IMAGE_KINDS: dict[str, _Kind] = {
    "IO": _Kind(
        "IO", DigitalIntraOralXRayImageStorageForPresentation, intraoral, 12, extra=_dx_attributes
    ),
    "PX": _Kind(
        "PX",
        DigitalXRayImageStorageForPresentation,
        panoramic,
        16,
        window=(32768, 65536),
        extra=_dx_attributes,
    ),
    "CR": _Kind(
        "CR",
        ComputedRadiographyImageStorage,
        _invert_12(skull_radiograph),
        12,
        photometric="MONOCHROME1",
        extra=_cr_attributes,
    ),
    "MR-T1": _Kind(
        "MR",
        MRImageStorage,
        lambda r, i: mr_slice(r, i, contrast=1.0),
        12,
        window=(700, 1400),
        extra=_mr_attributes,
    ),
    "MR-T2": _Kind(
        "MR",
        MRImageStorage,
        lambda r, i: mr_slice(r, i, contrast=0.3),
        12,
        window=(600, 1200),
        extra=_mr_attributes,
    ),
    "MR-PD": _Kind(
        "MR",
        MRImageStorage,
        lambda r, i: mr_slice(r, i, contrast=0.6),
        12,
        window=(650, 1300),
        extra=_mr_attributes,
    ),
    "CT": _Kind("CT", CTImageStorage, None, 16, window=(1000, 4000), extra=_ct_attributes),
}


def _write(ds: Dataset, path: Path, transfer_syntax: str) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _series_images(spec: SeriesSpec, kind: _Kind, rng: np.random.Generator) -> Iterator[Image]:
    if kind.make is None:
        ct = CTPhantom(spec.count, rng)
        yield from (ct.slice_hu(index) for index in range(spec.count))
    else:
        yield from (kind.make(rng, index) for index in range(spec.count))


def _generate_series(
    out_dir: Path,
    patient: DemoPatient,
    study: StudySpec,
    study_uid: str,
    number: int,
    spec: SeriesSpec,
) -> DemoSeries:
    kind = IMAGE_KINDS[spec.kind]
    series_uid = uid(study.key, number)
    rng = np.random.default_rng(hash_key(study.key) % 2**32 + number)
    frame_of_reference = uid(study.key, number, "for")
    syntax = RLELossless if spec.compressed else ExplicitVRLittleEndian
    instances = []
    for index, image in enumerate(_series_images(spec, kind, rng)):
        ds = _base_dataset(patient, study, study_uid, kind.sop_class, kind.modality)
        ds.SOPInstanceUID = uid(study.key, number, index)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = spec.description
        ds.InstanceNumber = index + 1
        ds.AcquisitionDate, ds.AcquisitionTime = study.date, study.time
        if kind.modality in ("CT", "MR"):
            ds.FrameOfReferenceUID = frame_of_reference
            ds.PositionReferenceIndicator = ""
        kind.extra(ds, index)
        _set_pixels(ds, image, kind.bits_stored, kind.photometric)
        ds.WindowCenter, ds.WindowWidth = kind.window
        if spec.compressed:
            # pydicom's own RLE encoder: no optional codec package needed. It
            # would mint a random SOPInstanceUID unless told not to.
            ds.compress(RLELossless, image, encoding_plugin="pydicom", generate_instance_uid=False)
        path = out_dir / patient.patient_id / study.key / f"{number:02d}" / f"{index + 1:04d}.dcm"
        _write(ds, path, syntax)
        instances.append(DemoInstance(str(ds.SOPInstanceUID), path))
    return DemoSeries(
        series_uid=str(series_uid),
        number=number,
        modality=kind.modality,
        description=spec.description,
        sop_class_uid=str(kind.sop_class),
        transfer_syntax_uid=str(syntax),
        photometric=kind.photometric,
        instances=tuple(instances),
    )


def generate(out_dir: Path, *, ct_slices: int = 240) -> DemoCatalog:
    """Write all demo studies under ``out_dir`` and describe them."""
    out_dir = Path(out_dir)
    patients = {p.patient_id: p for p in PATIENTS}
    studies = []
    for spec in study_specs(ct_slices):
        patient = patients[spec.patient_id]
        study_uid = uid(spec.key)
        series = tuple(
            _generate_series(out_dir, patient, spec, study_uid, number, series_spec)
            for number, series_spec in enumerate(spec.series, start=1)
        )
        studies.append(
            DemoStudy(
                key=spec.key,
                study_uid=str(study_uid),
                patient_id=spec.patient_id,
                date=spec.date,
                time=spec.time,
                description=spec.description,
                accession=accession_number(spec),
                series=series,
            )
        )
    return DemoCatalog(root=out_dir, patients=PATIENTS, studies=tuple(studies))


# -- a study in every transfer syntax a PACS keeps as it got it ---------------------------

MIX_PATIENT = DemoPatient("MIX-0001", "Format^Mix", "19700101", "O", None, OUTSIDE)
MIX_STUDY_KEY = "format-mix-2025"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
# (series description, transfer syntax, instances, kind): several syntaxes share the MR class,
# so a PACS that sends every file of a class in one syntax has to convert some of them.
_MIX_SERIES: tuple[tuple[str, str, int, str], ...] = (
    ("MR explicit VR", str(ExplicitVRLittleEndian), 2, "mr"),
    ("MR implicit VR", str(ImplicitVRLittleEndian), 2, "mr"),
    ("MR RLE", str(RLELossless), 2, "mr"),
    ("MR JPEG lossless", JPEG_LOSSLESS_SV1, 2, "mr"),
    ("MR JPEG-LS lossless", JPEG_LS_LOSSLESS, 2, "mr"),
    ("Photo RGB", str(ExplicitVRLittleEndian), 1, "rgb"),
    ("Multi-frame RLE", str(RLELossless), 1, "multiframe"),
)
_DCMTK_ENCODERS = {
    JPEG_LOSSLESS_SV1: ["dcmcjpeg", "+e1"],
    JPEG_LS_LOSSLESS: ["dcmcjpls", "+el"],
}


def generate_format_mix(out_dir: Path) -> DemoStudy:
    """One small study whose series use the syntaxes, photometrics and frame counts a PACS
    must pass through untouched. JPEG files are encoded with DCMTK (dcmcjpeg, dcmcjpls)."""
    out_dir = Path(out_dir)
    spec = StudySpec(MIX_STUDY_KEY, MIX_PATIENT.patient_id, "20250301", "120000", "Format mix", ())
    study_uid = str(uid(spec.key))
    rng = np.random.default_rng(hash_key(spec.key))
    series = []
    for number, (description, syntax, count, kind) in enumerate(_MIX_SERIES, start=1):
        sop_class = {
            "mr": MRImageStorage,
            "rgb": SecondaryCaptureImageStorage,
            "multiframe": MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        }[kind]
        modality = "MR" if kind == "mr" else "OT"
        instances = []
        for index in range(count):
            ds = _base_dataset(MIX_PATIENT, spec, study_uid, sop_class, modality)
            ds.SeriesDescription = description
            ds.SOPInstanceUID = uid(spec.key, number, index)
            ds.SeriesInstanceUID = uid(spec.key, number)
            ds.SeriesNumber, ds.InstanceNumber = number, index + 1
            if kind == "mr":
                _mr_attributes(ds, index)
                ds.FrameOfReferenceUID = uid(spec.key, number, "for")
                ds.PositionReferenceIndicator = ""
                _set_pixels(
                    ds, _to_uint(_noise(rng, (64, 64), 300.0) + 2000, 12), 12, "MONOCHROME2"
                )
            elif kind == "rgb":
                _set_rgb(ds, rng)
            else:
                _set_frames(ds, rng, frames=4)
            path = (
                out_dir
                / MIX_PATIENT.patient_id
                / spec.key
                / f"{number:02d}"
                / f"{index + 1:04d}.dcm"
            )
            if syntax == str(RLELossless):
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
            if syntax in _DCMTK_ENCODERS:
                plain = path.with_suffix(".plain")
                _write(ds, plain, ExplicitVRLittleEndian)
                subprocess.run([*_DCMTK_ENCODERS[syntax], str(plain), str(path)], check=True)
                plain.unlink()
            else:
                _write(ds, path, syntax)
            instances.append(DemoInstance(str(ds.SOPInstanceUID), path))
        series.append(
            DemoSeries(
                series_uid=str(uid(spec.key, number)),
                number=number,
                modality=modality,
                description=description,
                sop_class_uid=str(sop_class),
                transfer_syntax_uid=syntax,
                photometric="RGB" if kind == "rgb" else "MONOCHROME2",
                instances=tuple(instances),
            )
        )
    return DemoStudy(
        key=spec.key,
        study_uid=study_uid,
        patient_id=MIX_PATIENT.patient_id,
        date=spec.date,
        time=spec.time,
        description=spec.description,
        accession=accession_number(spec),
        series=tuple(series),
    )


def _set_rgb(ds: Dataset, rng: np.random.Generator) -> None:
    rows, cols = 48, 64
    y, x = _grid(rows, cols)
    shape = (rows, cols)
    red, green = np.broadcast_to((x + 1) * 127, shape), np.broadcast_to((y + 1) * 127, shape)
    image = np.stack([red, green, _noise(rng, shape, 64.0) + 128], axis=-1)
    ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    ds.PhotometricInterpretation = "RGB"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.ConversionType = "WSD"
    ds.PixelData = np.clip(image, 0, 255).astype(np.uint8).tobytes()


def _set_frames(ds: Dataset, rng: np.random.Generator, frames: int) -> None:
    stack = np.stack([_to_uint(_noise(rng, (32, 32), 300.0) + 2000, 12) for _ in range(frames)])
    _set_pixels(ds, stack[0], 12, "MONOCHROME2")
    ds.Rows, ds.Columns = stack.shape[1:]
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    ds.FrameTime = 100
    ds.PixelData = stack.tobytes()


# -- loading into a PACS -------------------------------------------------------------------


def _file_syntaxes(files: Sequence[Path]) -> list[tuple[str, str]]:
    """(SOP class, transfer syntax) of each file, from its meta header only."""
    result = []
    for path in files:
        meta = read_file_meta_info(path)
        result.append((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    return result


def store(
    files: Iterable[Path],
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str = "DEMOLOADER",
    *,
    timeout: float = 30,
) -> int:
    """C-STORE every file, as-is, over one association; returns the number stored.

    Each (SOP class, transfer syntax) pair gets its own presentation context,
    so the PACS cannot pick a different syntax for a class and force us to
    transcode: the files arrive byte-identical in their dataset part.
    """
    files = [Path(f) for f in files]
    pairs = _file_syntaxes(files)
    contexts = sorted(set(pairs))
    if len(contexts) > 128:
        raise ValueError(f"{len(contexts)} presentation contexts needed, 128 allowed")
    ae = AE(ae_title=calling_aet)
    ae.requested_contexts = [build_context(sop, ts) for sop, ts in contexts]
    ae.maximum_pdu_size = 0
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    # A loaded machine (several Orthancs at once) once lost an association mid-load: carry on
    # from the file that got no answer, on a new association, a bounded number of times.
    stored = 0
    for _ in range(STORE_ASSOCIATIONS):
        stored = _store_from(ae, files, stored, contexts, host, port, called_aet)
        if stored == len(files):
            return stored
    raise RuntimeError(
        f"C-STORE of {files[stored]} to {called_aet} failed: no response "
        f"({STORE_ASSOCIATIONS} associations tried)"
    )


STORE_ASSOCIATIONS = 3


def _store_from(
    ae: AE,
    files: Sequence[Path],
    start: int,
    contexts: Sequence[tuple[str, str]],
    host: str,
    port: int,
    called_aet: str,
) -> int:
    """Store files[start:] over one association. Returns the index of the first file that got
    no answer (the association is then aborted), or len(files) once all are stored."""
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        raise ConnectionError(f"no association with {called_aet}@{host}:{port}")
    try:
        _check_contexts(assoc.accepted_contexts, contexts)
        for number in range(start, len(files)):
            status = assoc.send_c_store(files[number])
            code = getattr(status, "Status", None)
            if code is None:
                assoc.abort()
                return number
            if code != 0x0000:
                raise RuntimeError(
                    f"C-STORE of {files[number]} to {called_aet} failed: 0x{code:04X}"
                )
        return len(files)
    finally:
        if assoc.is_established:
            assoc.release()


def _check_contexts(
    accepted: Sequence[PresentationContext], wanted: Sequence[tuple[str, str]]
) -> None:
    got = {(str(c.abstract_syntax), str(c.transfer_syntax[0])) for c in accepted}
    missing = [pair for pair in wanted if pair not in got]
    if missing:
        raise RuntimeError(f"PACS rejected presentation contexts {missing}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--ct-slices", type=int, default=240)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    catalog = generate(args.out_dir, ct_slices=args.ct_slices)
    elapsed = time.perf_counter() - started
    print(
        f"{len(catalog.studies)} studies, {catalog.instance_count} instances "
        f"for {len(catalog.patients)} patient ids in {args.out_dir} ({elapsed:.1f} s)"
    )
    for study in catalog.studies:
        modalities = "/".join(sorted(study.modalities))
        print(
            f"  {study.patient_id:10} {study.date} {modalities:6} "
            f"{study.instance_count:4}  {study.key}"
        )


if __name__ == "__main__":
    main()
