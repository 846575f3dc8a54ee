"""The study store on disk: `<root>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm`.

Files arrive under a temporary name in `<root>/.incoming/` and are put in place in one step,
so a crash never leaves a partial file under a real name. What happens when a file of that
name is already there depends on who sent the new copy (`Origin`):
- the same bytes again: nothing changes, and the instance counts once;
- other bytes from the PACS a retrieve asked (`RETRIEVED`): the PACS's copy replaces the
  stored one atomically (`os.replace`), and the old one is kept aside under
  `<root>/.held/replaced/`, never served;
- other bytes from anyone else (`PUSHED`): the stored copy stays, the new one is held back
  under `<root>/.held/quarantine/`, never served, with a note of who sent it.
A file that claims to belong to a study being retrieved but does not come from that retrieve
(`HELD`) is held back whatever is stored. `<root>/.held/` keeps at most `held_max_files`
files; past that the oldest go first.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import psutil
from pydicom import dcmread

from pacs.attributes import PATIENT_TAGS, patient_changes, patient_of
from pacs.models import PacsPatient

# DICOM UIDs are digits and dots, at most 64 characters. Checking this is also what keeps a
# crafted UID ("../..") from writing outside the store.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


log = logging.getLogger(__name__)

HELD_MAX_FILES = 1000
# In a study's folder: some of its files came from a push (see `has_pushed`).
PUSHED_MARK = ".pushed"


class InvalidUID(ValueError):
    pass


class Origin(Enum):
    """Who sent a file, as far as the store's rules are concerned (see the module docs)."""

    RETRIEVED = "retrieved"
    PUSHED = "pushed"
    HELD = "held"


class Placement(Enum):
    NEW = "new"  # filed under its name
    SAME = "same"  # that copy was already there
    REPLACED = "replaced"  # the PACS's copy replaced another; the old one is held aside
    HELD_BACK = "held back"  # kept under .held/quarantine, never served


@dataclass(frozen=True)
class Filed:
    placement: Placement
    # Where the other copy went: the replaced one, or the one held back.
    held_path: Path | None = None


def check_uid(value: str, what: str) -> str:
    if not value or len(value) > 64 or not _UID.match(value):
        raise InvalidUID(f"{what} is not a valid DICOM UID")
    return value


@dataclass(frozen=True)
class StoredInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    path: Path
    size: int
    new: bool
    calling_ae_title: str = ""
    number: int | None = None  # InstanceNumber, when the dataset has a valid one
    calling_address: str = ""  # the sender's IP address, as the connection gave it
    placement: Placement = Placement.NEW
    held_path: Path | None = None  # see Filed
    # Sent by the PACS a retrieve waits on, for that retrieve (Origin.RETRIEVED).
    solicited: bool = False

    @property
    def kept(self) -> bool:
        """Whether this copy is the one under its name in the store (not held back)."""
        return self.placement is not Placement.HELD_BACK


@dataclass(frozen=True)
class HeldFile:
    """A file held back (never served), as its note describes it."""

    study_uid: str
    sop_instance_uid: str
    received_at: str
    calling_ae_title: str
    calling_address: str
    reason: str


class StudyStore:
    def __init__(self, root: Path, *, held_max_files: int = HELD_MAX_FILES) -> None:
        self.root = Path(root).resolve()
        self.incoming = self.root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.held = self.root / ".held"
        self.held_max_files = held_max_files
        self._held_lock = threading.Lock()

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        return (
            self.root
            / check_uid(study_uid, "StudyInstanceUID")
            / check_uid(series_uid, "SeriesInstanceUID")
            / f"{check_uid(sop_instance_uid, 'SOPInstanceUID')}.dcm"
        )

    def has(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> bool:
        return self.path_for(study_uid, series_uid, sop_instance_uid).is_file()

    def study_dir(self, study_uid: str) -> Path:
        return self.root / check_uid(study_uid, "StudyInstanceUID")

    def accept(
        self,
        temp_path: Path,
        target: Path,
        origin: Origin = Origin.PUSHED,
        note: dict[str, str] | None = None,
    ) -> Filed:
        """Put a complete temp file in place by the rules of the module docs.

        `os.link` fails when the target exists, which makes "first copy wins" atomic even
        when two associations deliver the same instance at once; a differing copy is then
        compared and placed by `origin`. `note` (who sent it, why) is written beside a file
        held back. The temp file is gone afterwards, whatever happened.
        """
        try:
            if origin is Origin.HELD:
                return Filed(Placement.HELD_BACK, self._hold(temp_path, target, note))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._link(temp_path, target)
            except FileExistsError:
                pass
            else:
                if origin is Origin.PUSHED:
                    self._mark_pushed(target.parent.parent)
                return Filed(Placement.NEW)
            if _same_file(temp_path, target):
                return Filed(Placement.SAME)
            if origin is Origin.RETRIEVED:
                return Filed(Placement.REPLACED, self._replace(temp_path, target))
            return Filed(Placement.HELD_BACK, self._hold(temp_path, target, note))
        finally:
            temp_path.unlink(missing_ok=True)

    def remove_study(self, study_uid: str) -> int:
        """Delete the study's folder; the number of its files that were there.

        The folder is first renamed into `.incoming` (one step: no path under the study
        resolves afterwards), then deleted; a crash in between leaves it to
        `remove_stale_incoming`. Held-back copies stay in `.held` (bounded there).
        """
        study_dir = self.study_dir(study_uid)
        doomed = self.incoming / f"{self.incoming_prefix()}removed-{study_dir.name}"
        try:
            os.replace(study_dir, doomed)
        except FileNotFoundError:
            return 0
        files = sum(1 for p in doomed.rglob("*.dcm") if p.is_file())
        shutil.rmtree(doomed, ignore_errors=True)
        return files

    def stored_patient(self, study_uid: str) -> PacsPatient | None:
        """The patient one stored file of the study names (None: no readable file)."""
        study_dir = self.study_dir(study_uid)
        first = next(study_dir.glob("*/*.dcm"), None) if study_dir.is_dir() else None
        if first is None:
            return None
        try:
            header = dcmread(first, stop_before_pixels=True, specific_tags=list(PATIENT_TAGS))
        except Exception:  # pydicom raises a wide range of errors on garbage
            return None
        return patient_of(header)

    def has_pushed(self, study_uid: str) -> bool:
        """Whether the study's folder holds files someone pushed (not a retrieve's): a
        retrieve then asks for all of it again rather than trust what is there."""
        return (self.study_dir(study_uid) / PUSHED_MARK).exists()

    def clear_pushed(self, study_uid: str) -> None:
        """After a retrieve brought the whole study: every file is the PACS's copy now."""
        (self.study_dir(study_uid) / PUSHED_MARK).unlink(missing_ok=True)

    def _mark_pushed(self, study_dir: Path) -> None:
        mark = study_dir / PUSHED_MARK
        if not mark.exists():  # one stat per pushed file; the mark is written once
            mark.touch()

    def _link(self, temp_path: Path, target: Path) -> None:
        try:
            os.link(temp_path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # .incoming on another filesystem: copy beside the target, then link.
            staged = self.incoming / f"{self.incoming_prefix()}{target.name}.part"
            shutil.copyfile(temp_path, staged)
            try:
                os.link(staged, target)
            finally:
                staged.unlink(missing_ok=True)

    def _replace(self, temp_path: Path, target: Path) -> Path:
        """The PACS's copy in place of `target` in one step; the old copy kept aside."""
        aside = self._held_name("replaced", target)
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.link(target, aside)
        os.replace(temp_path, target)
        self._trim_held()
        return aside

    def _hold(self, temp_path: Path, target: Path, note: dict[str, str] | None) -> Path:
        held = self._held_name("quarantine", target)
        held.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp_path, held)
        record = {"study_uid": target.parent.parent.name, "sop_instance_uid": target.stem}
        held.with_suffix(".json").write_text(json.dumps({**record, **(note or {})}))
        self._trim_held()
        return held

    def _held_name(self, kind: str, target: Path) -> Path:
        study = target.parent.parent.name
        return self.held / kind / study / f"{target.stem}.{time.time_ns()}.dcm"

    def held_files(self, kind: str) -> list[Path]:
        """The files held back of `kind` ("quarantine", "replaced"), newest first."""
        folder = self.held / kind
        if not folder.is_dir():
            return []
        files = [p for p in folder.glob("*/*.dcm") if p.is_file()]
        return sorted(files, key=_held_time, reverse=True)

    def held_notes(self, limit: int) -> list[HeldFile]:
        """The newest `limit` files held back from senders (quarantine), with who sent them
        and why: what staff are shown. Never their contents."""
        notes = []
        for path in self.held_files("quarantine")[:limit]:
            try:
                note = json.loads(path.with_suffix(".json").read_text())
            except (OSError, ValueError):
                note = {}
            notes.append(
                HeldFile(
                    study_uid=path.parent.name,
                    # Held names are <SOPInstanceUID>.<nanoseconds>.dcm.
                    sop_instance_uid=path.stem.rsplit(".", 1)[0],
                    received_at=str(note.get("received_at", "")),
                    calling_ae_title=str(note.get("calling_ae_title", "")),
                    calling_address=str(note.get("calling_address", "")),
                    reason=str(note.get("reason", "")),
                )
            )
        return notes

    def _trim_held(self) -> None:
        """Keep `.held` within `held_max_files`: the oldest files (and notes) go first."""
        with self._held_lock:
            files = [*self.held_files("quarantine"), *self.held_files("replaced")]
            files.sort(key=_held_time, reverse=True)
            for path in files[self.held_max_files :]:
                path.unlink(missing_ok=True)
                path.with_suffix(".json").unlink(missing_ok=True)
                log.info(
                    "held-back file %s removed: more than %d are kept",
                    path.name,
                    self.held_max_files,
                )

    def remove_stale_incoming(self) -> int:
        """Delete temp files left by transfers of processes that no longer run.

        Temp names carry the receiving process id (see `incoming_prefix`), so files still
        being written by a live gateway are left alone.
        """
        removed = 0
        for entry in os.scandir(self.incoming):
            pid = _pid_of(entry.name)
            if pid is not None and _process_alive(pid):
                continue
            if entry.is_dir(follow_symlinks=False):
                if pid is not None:  # a study removal a crash cut short
                    shutil.rmtree(entry.path, ignore_errors=True)
            elif entry.is_file():
                try:
                    Path(entry.path).unlink(missing_ok=True)
                except PermissionError:
                    # Windows: another process (an antivirus scan, a reused pid) still holds
                    # it open; the next start tries again.
                    continue
                removed += 1
        return removed

    @staticmethod
    def incoming_prefix() -> str:
        return f"rx-{os.getpid()}-"


_STUDY_KEYWORDS = ("StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "Modality")


def size_words(count: int) -> str:
    """Bytes for a person: "850 MB", "1.2 GB"."""
    if abs(count) >= 10**9:
        return f"{count / 10**9:.1f} GB"
    return f"{count // 10**6} MB"


def free_bytes(path: Path) -> int | None:
    """Free bytes on `path`'s filesystem; None when it cannot be read."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def free_space(path: Path) -> str:
    """The free space on `path`'s filesystem, for a person: "12 MB", "3.4 GB"."""
    free = free_bytes(path)
    return "unknown space" if free is None else size_words(free)


def changes_between(old: Path, new: Path) -> list[str]:
    """The DICOM keywords of patient and study attributes in which two copies of an instance
    differ; ["other attributes or pixel data"] when none of those does."""
    try:
        before = dcmread(old, stop_before_pixels=True)
        after = dcmread(new, stop_before_pixels=True)
    except Exception:  # pydicom raises a wide range of errors on garbage
        return ["the file could not be compared"]
    changes = patient_changes(patient_of(after), patient_of(before))
    changes += [k for k in _STUDY_KEYWORDS if str(before.get(k, "")) != str(after.get(k, ""))]
    return changes or ["other attributes or pixel data"]


def _same_file(a: Path, b: Path) -> bool:
    """Whether two copies carry the same dataset. Each node writes its own file meta
    (implementation UID, source AE title), so only the bytes after it are compared."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            start_a, start_b = _body_start(fa), _body_start(fb)
            size_a = os.fstat(fa.fileno()).st_size - start_a
            if size_a != os.fstat(fb.fileno()).st_size - start_b:
                return False
            fa.seek(start_a)
            fb.seek(start_b)
            while True:
                chunk = fa.read(1 << 20)
                if chunk != fb.read(1 << 20):
                    return False
                if not chunk:
                    return True
    except OSError:
        return False


def _body_start(handle: BinaryIO) -> int:
    """Where the dataset starts after the preamble and the file meta group, by the group's
    length (0002,0000); 0 for a file laid out otherwise (then all of it is compared)."""
    head = handle.read(144)
    if len(head) < 144 or head[128:132] != b"DICM" or head[132:138] != b"\x02\x00\x00\x00UL":
        return 0
    return 144 + int.from_bytes(head[140:144], "little")


def _held_time(path: Path) -> int:
    stamp = path.stem.rpartition(".")[2]
    return int(stamp) if stamp.isdigit() else 0


def _pid_of(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) >= 3 and parts[0] == "rx" and parts[1].isdigit():
        return int(parts[1])
    return None


def _process_alive(pid: int) -> bool:
    if sys.platform == "win32":
        # On Windows os.kill(pid, 0) does not test the process: it TERMINATES it. psutil asks
        # with OpenProcess instead.
        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
