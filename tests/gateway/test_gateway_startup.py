"""`serve` start-up failures: one sentence on stderr, no traceback, a documented exit code."""

from __future__ import annotations

import os
import socket
import ssl
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
        (b"data_dir = [\n", "is not valid TOML"),
        (b'http_port = "eighty"\n', "the setting http_port is not valid"),
        (b"http_prot = 8080\n", "http_prot is not one the gateway knows (did you mean http_port?)"),
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


def test_serves_https_with_its_own_certificate(tmp_path):
    import httpx
    from serve_process import ServeProcess

    from gateway.core.settings import Settings

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*openssl, *subject, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    settings = Settings(
        data_dir=tmp_path / "var",
        dicom_port=free_port(),
        dicom_bind="127.0.0.1",
        workers=0,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    process = ServeProcess(settings, tmp_path)
    process._healthy = lambda: _https_healthy(process, cert)  # type: ignore[method-assign]
    try:
        process.start()
        trust = ssl.create_default_context(cafile=str(cert))
        answer = httpx.get(f"https://127.0.0.1:{process.http_port}/health", verify=trust)
        assert answer.status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{process.http_port}/health", timeout=5)
    finally:
        process.kill()


def _https_healthy(process, cert) -> bool:
    import httpx

    if process.process is not None and process.process.poll() is not None:
        raise RuntimeError(f"serve exited:\n{process.log_tail()}")
    try:
        url = f"https://127.0.0.1:{process.http_port}/health"
        trust = ssl.create_default_context(cafile=str(cert))
        return httpx.get(url, verify=trust, timeout=1).is_success
    except httpx.HTTPError:
        return False


def test_a_failure_inside_the_start_is_one_sentence_and_exit_3(tmp_path):
    """Past the checks above, the Storage SCP can still fail to bind (the port taken between
    the probe and the bind, as on a restart race): simulated at that boundary by replacing
    StorageSCP.start in the serve process."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import pacs.scp\n\n"
        "def _taken(self):\n"
        "    raise OSError(98, 'Address already in use')\n\n"
        "pacs.scp.StorageSCP.start = _taken\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--config",
            str(config_file(tmp_path, free_port(), free_port())),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(hook)},
    )

    assert result.returncode == 3
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert errors[0].endswith(
        "The gateway could not start: OSError: [Errno 98] Address already in use"
    ), result.stderr
