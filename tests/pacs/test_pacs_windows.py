"""Code paths that differ on Windows, with the platform difference simulated at the boundary:
sys.platform set to "win32", and os/pathlib calls replaced by ones that behave as Windows does
(os.kill(pid, 0) terminates; an open file cannot be unlinked or replaced)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import pacs.preview.cache as cache_module
from pacs.receive import STATUS_SUCCESS, store_handler
from pacs.store import StudyStore


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def windows_kill(monkeypatch):
    """os.kill as on Windows: any signal, 0 included, terminates the process. Records calls."""
    calls: list[tuple[int, int]] = []

    def kill(pid: int, sig: int) -> None:
        calls.append((pid, sig))
        raise AssertionError(f"os.kill({pid}, {sig}) on Windows would terminate process {pid}")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", kill)
    return calls


def test_on_windows_the_pid_check_never_signals_the_process(windows_kill, monkeypatch, tmp_path):
    asked: list[int] = []
    alive = {os.getpid()}

    def pid_exists(pid: int) -> bool:  # psutil's Windows path is OpenProcess, not a signal
        asked.append(pid)
        return pid in alive

    monkeypatch.setattr(psutil, "pid_exists", pid_exists)
    store = StudyStore(tmp_path / "store")
    dead = _dead_pid()
    mine = store.incoming / f"{store.incoming_prefix()}a.dcm"
    gone = store.incoming / f"rx-{dead}-b.dcm"
    mine.write_bytes(b"x")
    gone.write_bytes(b"x")

    assert store.remove_stale_incoming() == 1
    assert mine.exists() and not gone.exists()
    assert windows_kill == []
    assert sorted(asked) == sorted([os.getpid(), dead])


def test_on_linux_the_pid_check_tells_live_from_dead(tmp_path):
    store = StudyStore(tmp_path / "store")
    mine = store.incoming / f"{store.incoming_prefix()}a.dcm"
    gone = store.incoming / f"rx-{_dead_pid()}-b.dcm"
    mine.write_bytes(b"x")
    gone.write_bytes(b"x")
    assert store.remove_stale_incoming() == 1
    assert mine.exists() and not gone.exists()


def test_a_stale_file_another_process_holds_open_is_left_for_the_next_start(monkeypatch, tmp_path):
    store = StudyStore(tmp_path / "store")
    held = store.incoming / f"rx-{_dead_pid()}-held.dcm"
    free = store.incoming / f"rx-{_dead_pid()}-free.dcm"
    held.write_bytes(b"x")
    free.write_bytes(b"x")
    real_unlink = pathlib.Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == held.name:
            raise PermissionError(13, "The process cannot access the file", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    assert store.remove_stale_incoming() == 1
    assert held.exists() and not free.exists()


def test_a_received_instance_is_filed_although_windows_cannot_unlink_open_files(
    monkeypatch, tmp_path
):
    store = StudyStore(tmp_path / "store")
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    # As pynetdicom leaves it: written, flushed, and its handle still open.
    handle = tempfile.NamedTemporaryFile(dir=store.incoming, delete=False, suffix=".dcm")  # noqa: SIM115
    ds.save_as(handle, enforce_file_format=True)
    handle.flush()
    temp = Path(handle.name)
    real_unlink = pathlib.Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == temp and not handle.closed:
            raise PermissionError(13, "The process cannot access the file", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    event = SimpleNamespace(
        dataset_path=temp,
        assoc=SimpleNamespace(
            is_requestor=False,
            requestor=SimpleNamespace(ae_title="MODALITY", address="127.0.0.1"),
        ),
        request=SimpleNamespace(
            _dataset_file=handle,
            AffectedSOPInstanceUID=ds.SOPInstanceUID,
            AffectedSOPClassUID=ds.SOPClassUID,
        ),
        context=SimpleNamespace(transfer_syntax=ExplicitVRLittleEndian),
    )
    stored = []
    status = store_handler(store, stored.append)(event)

    assert status == STATUS_SUCCESS
    assert [s.sop_instance_uid for s in stored] == [ds.SOPInstanceUID]
    assert stored[0].path.is_file()
    assert list(store.incoming.iterdir()) == []


def _replace_failing(monkeypatch, times: int) -> list[str]:
    calls: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: object) -> None:
        calls.append(str(dst))
        if len(calls) <= times:
            raise PermissionError(13, "Access is denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(cache_module.os, "replace", replace)
    monkeypatch.setattr(cache_module, "_REPLACE_RETRY_DELAYS", (0.0, 0.0, 0.0))
    return calls


def test_a_preview_replaced_while_a_reader_holds_it_is_retried(monkeypatch, tmp_path):
    calls = _replace_failing(monkeypatch, times=2)
    target = tmp_path / "s" / "preview.png"
    cache_module._write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert len(calls) == 3
    assert [p.name for p in target.parent.iterdir()] == ["preview.png"]


def test_a_preview_held_open_for_long_keeps_the_complete_one_already_there(monkeypatch, tmp_path):
    target = tmp_path / "s" / "preview.png"
    target.parent.mkdir()
    target.write_bytes(b"other writer's")
    _replace_failing(monkeypatch, times=99)
    cache_module._write_atomic(target, b"new")
    assert target.read_bytes() == b"other writer's"
    assert [p.name for p in target.parent.iterdir()] == ["preview.png"]

    missing = tmp_path / "t" / "preview.png"
    with pytest.raises(PermissionError):
        cache_module._write_atomic(missing, b"new")
    assert list(missing.parent.iterdir()) == []
