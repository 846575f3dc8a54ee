"""The study store on disk: `<root>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm`.

Files arrive under a temporary name in `<root>/.incoming/` and are linked into place in one
step, so a crash never leaves a partial file under a real name, and the first complete copy
of an instance wins: a re-sent instance replaces nothing and is counted once.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

# DICOM UIDs are digits and dots, at most 64 characters. Checking this is also what keeps a
# crafted UID ("../..") from writing outside the store.
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class InvalidUID(ValueError):
    pass


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


class StudyStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.incoming = self.root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

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

    def accept(self, temp_path: Path, target: Path) -> bool:
        """Move a complete temp file to `target`; False if the instance was already there.

        `os.link` fails when the target exists, which makes "first complete copy wins"
        atomic even when two associations deliver the same instance at once.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(temp_path, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return self._accept_across_filesystems(temp_path, target)
        finally:
            temp_path.unlink(missing_ok=True)
        return True

    def _accept_across_filesystems(self, temp_path: Path, target: Path) -> bool:
        staged = self.incoming / f"{self.incoming_prefix()}{target.name}.part"
        shutil.copyfile(temp_path, staged)
        try:
            os.link(staged, target)
        except FileExistsError:
            return False
        finally:
            staged.unlink(missing_ok=True)
        return True

    def remove_stale_incoming(self) -> int:
        """Delete temp files left by transfers of processes that no longer run.

        Temp names carry the receiving process id (see `incoming_prefix`), so files still
        being written by a live gateway are left alone.
        """
        removed = 0
        for entry in os.scandir(self.incoming):
            pid = _pid_of(entry.name)
            if entry.is_file() and (pid is None or not _process_alive(pid)):
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
