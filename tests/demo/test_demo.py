"""The README's first command, `./dev run`: the demo fetch, then everything stays up with the
key and the pages printed, until a signal stops everything it started."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from orthanc_server import wait_until

DEMO = Path(__file__).resolve().parents[2] / "orthanc-test" / "demo.py"


def _reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.HTTPError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_the_demo_stays_up_with_working_links_and_a_signal_stops_everything(tmp_path, sig):
    demo = subprocess.Popen(
        [sys.executable, str(DEMO)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        assert wait_until(
            lambda: "Ctrl+C stops everything." in "".join(lines) or demo.poll() is not None, 240
        ), lines
        text = "".join(lines)
        assert demo.poll() is None, text
        assert "[succeeded] Fetched" in text
        key = re.search(r"API key: +(\S+)", text).group(1)
        links = dict(re.findall(r"^  (The [^:]+): +(http\S+)$", text, re.MULTILINE))
        assert set(links) == {
            "The clinician's page",
            "The review queue",
            "The API (OpenAPI)",
            "The demo PACS",
        }
        assert httpx.get(links["The demo PACS"]).status_code == 200
        assert httpx.get(links["The API (OpenAPI)"]).status_code == 200
        with httpx.Client() as browser:
            login = links["The clinician's page"].split("/ui/")[0] + "/ui/login"
            form = browser.get(login).text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            browser.post(login, data={"api_key": key, "csrf_token": csrf, "next": "/ui/"})
            for name in ("The clinician's page", "The review queue"):
                page = browser.get(links[name])
                assert page.status_code == 200 and "Log in" not in page.text, name

        demo.send_signal(sig)

        assert demo.wait(60) == 130
        assert not _reachable(links["The API (OpenAPI)"])  # serve stopped, port closed
        assert not _reachable(links["The demo PACS"])  # Orthanc stopped
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
