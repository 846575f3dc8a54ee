"""Helpers shared by the practice-side tests (imported as a plain module: tests/ has no
packages, so a name unlikely to clash)."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import orthanc_server
from moto.server import ThreadedMotoServer

LICENCE = "licence-for-tests"


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """Poll `predicate` until true or the deadline passes (a condition, not a fixed sleep)."""
    return orthanc_server.wait_until(predicate, timeout, interval)


_queue_numbers = itertools.count()


class Queues:
    """A command queue with a dead-letter queue (redrive after `max_receives`)."""

    def __init__(self, endpoint: str, max_receives: int = 2) -> None:
        self.client = boto3.client(
            "sqs",
            region_name="eu-west-2",
            endpoint_url=endpoint,
            aws_access_key_id="admin",
            aws_secret_access_key="admin",
        )
        n = next(_queue_numbers)
        self.dlq_url = self.client.create_queue(QueueName=f"commands-dlq-{n}")["QueueUrl"]
        dlq_arn = self.client.get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.url = self.client.create_queue(
            QueueName=f"commands-{n}",
            Attributes={
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
                )
            },
        )["QueueUrl"]

    def send(self, body: dict[str, Any] | str) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.client.send_message(QueueUrl=self.url, MessageBody=text)["MessageId"]

    def count(self, url: str) -> int:
        attrs = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self) -> list[str]:
        got = self.client.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [m["Body"] for m in got.get("Messages", [])]


class RollbarRecorder:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                with recorder._lock:
                    recorder.raw.append(body)
                    recorder.items.append(json.loads(body))
                answer = b'{"err": 0, "result": {"id": null, "uuid": "x"}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/1/"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        assert wait_until(lambda: len(self.items) >= count, timeout), (
            f"expected {count} Rollbar items, got {len(self.items)}"
        )
        return list(self.items)

    def everything(self) -> str:
        """All received JSON, re-dumped without escapes so accented names are searchable."""
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in self.items)


@contextmanager
def running_moto() -> Iterator[str]:
    """A real moto server on a free local port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
