"""A local stand-in for the Flynotes practice API, for tests, benchmarks and demos.

It implements docs/flynotes-api.md in a thread on 127.0.0.1, records what it receives, and can
be told to fail the next N requests (with a status, or by dropping the connection).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from r4.flynotes import API_PREFIX, LICENCE_HEADER, LICENCE_SCHEME


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when bodies are not kept


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    batches: dict[str, int] = field(default_factory=dict)  # batch id -> patient count
    patients: dict[int, dict[str, Any]] = field(default_factory=dict)  # from batches
    synced: dict[int, dict[str, Any]] = field(default_factory=dict)  # from full syncs
    uploaded_patient_count: int = 0  # patients in first-seen batches
    failures_left: int = 0
    failure_status: int = 503  # 0 means: drop the connection without answering
    initialisations: int = 0
    attempts: int = 0  # every request that reached the server, failed or not


class FakeFlynotes:
    """Use as a context manager; `url` is the base URL to give FlynotesClient."""

    def __init__(
        self,
        licence_key: str = "test-licence",
        *,
        gateway_version: str = "0.1.0",
        queue_url: str = "http://127.0.0.1/000000000000/practice-commands",
        region: str = "eu-west-2",
        credentials_lifetime: timedelta = timedelta(hours=36),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep_bodies: bool = True,
    ) -> None:
        self.licence_key = licence_key
        self.gateway_version = gateway_version
        self.queue_url = queue_url
        self.region = region
        self.credentials_lifetime = credentials_lifetime
        self.now = now
        self.keep_bodies = keep_bodies
        self.state = _State()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-flynotes", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeFlynotes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Fail the next `count` requests with `status` (0: close the connection unanswered)."""
        with self._changed:
            self.state.failures_left = count
            self.state.failure_status = status

    def wait_for(self, predicate: Callable[[_State], bool], timeout: float = 10.0) -> bool:
        """Block until `predicate(state)` holds or `timeout` passes; returns whether it held."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.state):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # Called from the handler threads, under the condition's lock.
    def _licence_body(self) -> dict[str, Any]:
        self.state.initialisations += 1
        n = self.state.initialisations
        return {
            "practice_id": "practice-1",
            "gateway_version": self.gateway_version,
            "sqs": {
                "queue_url": self.queue_url,
                "region": self.region,
                "credentials": {
                    "access_key_id": f"ASIAFAKE{n:08d}",
                    "secret_access_key": f"secret-{n}",
                    "session_token": f"token-{n}",
                    "expiration": (self.now() + self.credentials_lifetime).isoformat(),
                },
            },
        }

    def _handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        with self._changed:
            try:
                self.state.attempts += 1
                if self.state.failures_left > 0:
                    self.state.failures_left -= 1
                    return self.state.failure_status, {"error": "injected failure"}
                if headers.get(LICENCE_HEADER.lower()) != f"{LICENCE_SCHEME} {self.licence_key}":
                    return 401, {"error": "unknown licence key"}
                body = json.loads(raw) if raw else None
                self.state.requests.append(
                    RecordedRequest(method, path, headers, body if self.keep_bodies else None)
                )
                return self._route(method, path, headers, body)
            finally:
                self._changed.notify_all()

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any] | None]:
        if not path.startswith(API_PREFIX):
            return 404, {"error": "not found"}
        path = path[len(API_PREFIX) :]
        if method == "POST" and path == "/licence/initialise":
            return 200, self._licence_body()
        if method == "POST" and path == "/patients/batches":
            batch_id = body["batch_id"]
            if headers.get("idempotency-key") != batch_id:
                return 400, {"error": "Idempotency-Key must equal batch_id"}
            patients = body["patients"]
            duplicate = batch_id in self.state.batches
            if not duplicate:
                self.state.batches[batch_id] = len(patients)
                self.state.uploaded_patient_count += len(patients)
                if self.keep_bodies:
                    for p in patients:
                        self.state.patients[p["id"]] = p
            return 200, {"batch_id": batch_id, "accepted": len(patients), "duplicate": duplicate}
        if method == "PUT" and path.startswith("/patients/"):
            patient_id = int(path.rsplit("/", 1)[1])
            if body.get("id") != patient_id:
                return 400, {"error": "id in path and body differ"}
            self.state.synced[patient_id] = body
            return 204, None
        return 404, {"error": "not found"}


def _handler_for(fake: FakeFlynotes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real API behind a proxy would
        # Headers and body go out in two writes; with Nagle on, each keep-alive answer would
        # wait for the client's delayed ACK (~40 ms).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = fake._handle(self.command, self.path, headers, raw)
            if status == 0:
                self.close_connection = True
                return
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_GET = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines carry patient ids; tests don't need them on stderr

    return Handler
