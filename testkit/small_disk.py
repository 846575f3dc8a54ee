"""A real, small filesystem for tests of a full disk: a tmpfs of a given size.

Mounting needs root (or a user namespace); CI runs as root. Writes past the size fail
with ENOSPC inside the kernel, as on a full disk: nothing in the code under test is faked.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PAGE = 4096


class CannotMount(RuntimeError):
    pass


@contextmanager
def small_disk(path: Path, size: int) -> Iterator[Path]:
    """`path`, a fresh tmpfs of `size` bytes (rounded up to a page) until the block ends."""
    path.mkdir(parents=True, exist_ok=True)
    size = -(-size // PAGE) * PAGE
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        raise CannotMount(mounted.stderr.strip() or f"mount exited {mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


def grow(path: Path, size: int) -> None:
    """Give the tmpfs at `path` room for `size` bytes, as freeing space on a disk would."""
    size = -(-size // PAGE) * PAGE
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)
