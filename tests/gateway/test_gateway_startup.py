"""`serve` start-up failures: one sentence on stderr, no traceback, a documented exit code."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from orthanc_server import free_port


def serve(config, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def config_file(tmp_path, http_port: int, dicom_port: int, extra: str = ""):
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "var"}"\nhttp_port = {http_port}\n'
        f'dicom_port = {dicom_port}\ndicom_bind = "127.0.0.1"\n{extra}',
        encoding="utf-8",
    )
    return path


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(".")
    return lines[0]


@pytest.mark.parametrize("which", ["http", "dicom"])
def test_busy_port(tmp_path, which):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        other = free_port()
        ports = (busy, other) if which == "http" else (other, busy)
        result = serve(config_file(tmp_path, *ports))
    sentence = one_sentence(result)
    assert result.returncode == 3
    assert f"port {busy} on 127.0.0.1 is already in use" in sentence
    assert f"{which}_port" in sentence
    # Refused before anything started: no database was created.
    assert not (tmp_path / "var" / "gateway.db").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'data_dir = "\xff\xfe"\n', "is not UTF-8 text"),
        (b"data_dir = [\n", "could not be read"),
        (b'http_port = "eighty"\n', "The setting http_port is invalid"),
    ],
)
def test_unreadable_config(tmp_path, content, expected):
    path = tmp_path / "gateway.toml"
    path.write_bytes(content)
    result = serve(path)
    assert expected in one_sentence(result)
    assert result.returncode == 1


def test_missing_config(tmp_path):
    result = serve(tmp_path / "nowhere.toml")
    assert "does not exist" in one_sentence(result)
    assert result.returncode == 1
