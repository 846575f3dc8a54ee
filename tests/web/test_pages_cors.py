"""A browser viewer on another origin (another loopback port) calls /dicomweb and the API
with a key when its origin is allowed, and is blocked by Chromium when it is not."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

VIEWER_PAGE = "<!doctype html><title>Viewer</title><p>other origin</p>"

CALL = """async ([url, key]) => {
  try {
    const answer = await fetch(url, {headers: {Authorization: `Bearer ${key}`}});
    return {status: answer.status, type: answer.headers.get("content-type"),
            retry: answer.headers.get("retry-after")};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


@pytest.fixture
def viewer_origin(tmp_path) -> Iterator[str]:
    """A static page served on a second loopback port: a different origin from the gateway."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(VIEWER_PAGE)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_allowed_origin_reads_dicomweb_and_jobs_with_a_key(serve_pages, page, viewer_origin):
    served = serve_pages(roles=("clinician",), cors_allowed_origins=[viewer_origin])
    key = served.keys["clinician"]
    page.goto(viewer_origin + "/index.html")

    studies = page.evaluate(CALL, [served.url + "/dicomweb/studies", key])
    assert studies == {"status": 200, "type": "application/dicom+json", "retry": None}
    jobs = page.evaluate(CALL, [served.url + "/api/v1/jobs", key])
    assert jobs["status"] == 200 and jobs["type"].startswith("application/json")
    # Without a key the gateway still says no (the browser may read that it did).
    refused = page.evaluate(CALL, [served.url + "/dicomweb/studies", "not-a-key"])
    assert refused["status"] == 401


def test_other_origins_are_blocked_by_the_browser(serve_pages, page, viewer_origin):
    served = serve_pages(roles=("clinician",), cors_allowed_origins=["http://viewer.example"])
    page.goto(viewer_origin + "/index.html")
    answer = page.evaluate(CALL, [served.url + "/dicomweb/studies", served.keys["clinician"]])
    assert "blocked" in answer and "Failed to fetch" in answer["blocked"]
