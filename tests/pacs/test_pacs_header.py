"""The quick header walk against pydicom: the same values, and never a file pydicom refuses."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

from pacs.header import quick_header
from pacs.receive import MalformedDataset, _read_header


def _samples(demo_catalog, format_mix) -> list[Path]:
    """A few files of every series: each syntax, photometric and layout the demos have."""
    files = [
        i.path for study in demo_catalog.studies for s in study.series for i in s.instances[:3]
    ]
    return files + list(format_mix.files)


def test_the_walk_reads_what_pydicom_reads_in_every_demo_syntax(demo_catalog, format_mix):
    for path in _samples(demo_catalog, format_mix):
        assert quick_header(path) == _read_header(path), path.name


def test_the_walk_never_vouches_for_a_file_pydicom_refuses_or_reads_otherwise(
    demo_catalog, format_mix, tmp_path
):
    # Cut short anywhere, or a few bytes changed in the header region: the walk either
    # hands the file to pydicom (None) or reads exactly what pydicom reads.
    rng = random.Random(20261201)
    mutated = tmp_path / "mutated.dcm"
    vouched = 0
    for path in _samples(demo_catalog, format_mix):
        original = path.read_bytes()
        for _ in range(40):
            data = bytearray(original)
            if rng.random() < 0.4:
                data = data[: rng.randrange(132, len(data))]
            else:
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(132, min(len(data), 4000))] = rng.randrange(256)
            mutated.write_bytes(bytes(data))
            quick = quick_header(mutated)
            if quick is None:
                continue
            vouched += 1
            try:
                assert quick == _read_header(mutated)
            except MalformedDataset as refused:
                pytest.fail(f"the walk vouched for a file pydicom refuses: {refused}")
    assert vouched > 0  # flips in values it does not read leave files well formed


def test_a_file_cut_inside_its_pixel_data_is_left_to_pydicom_which_refuses_it(
    demo_catalog, tmp_path
):
    original = demo_catalog.studies[0].series[0].instances[0].path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(original[:-100])
    assert quick_header(cut) is None
    with pytest.raises(MalformedDataset, match="longer than what arrived"):
        _read_header(cut)


@pytest.mark.parametrize("syntax", [DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian])
def test_syntaxes_the_walk_does_not_read_are_left_to_pydicom(tmp_path, syntax):
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / "other.dcm"
    dcmwrite(path, ds, enforce_file_format=True)
    assert quick_header(path) is None
    assert _read_header(path).sop_instance_uid == ds.SOPInstanceUID


def _with_character_set(path: Path, term: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = term
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dcmwrite(path, ds, enforce_file_format=True)
    return ds


def test_a_character_set_pydicom_may_not_read_is_left_to_pydicom(tmp_path):
    # A term pydicom does not know: it warns and reads the file.
    unknown = tmp_path / "unknown.dcm"
    ds = _with_character_set(unknown, "ISO_IR 999")
    assert quick_header(unknown) is None
    assert _read_header(unknown).sop_instance_uid == ds.SOPInstanceUID
    # A known term under a numeric VR: pydicom refuses the whole file.
    not_text = tmp_path / "not-text.dcm"
    _with_character_set(not_text, "ISO_IR 100")
    not_text.write_bytes(
        not_text.read_bytes().replace(b"\x08\x00\x05\x00CS", b"\x08\x00\x05\x00US", 1)
    )
    assert quick_header(not_text) is None
    with pytest.raises(MalformedDataset):
        _read_header(not_text)
