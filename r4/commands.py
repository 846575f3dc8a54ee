"""The SQS command loop: long-polls the practice's queue and hands each command to a handler.

Delivery rules:
- a message is deleted only once its handler returned; if the handler raises, the message is
  made visible again after `retry_delay_seconds` and SQS redelivers it, until the queue's
  redrive policy (maxReceiveCount) moves it to the dead-letter queue;
- a malformed or unknown message is reported and left the same way (it ends up in the
  dead-letter queue where someone can look at it); it never stops the loop;
- a `restart` command (RestartRequested from the handler) is deleted *before* the exception
  propagates, otherwise every restart would be followed by another one.

Credentials come from the licence initialisation and expire (36 h); the loop asks for new
ones when less than `refresh_margin` remains, or when SQS says they are no longer valid, and
rebuilds its boto3 client with them.

Stopping: the stop event is checked between polls and between messages, so the loop ends
within one long poll (`wait_time_seconds`, default 5 s) plus the handler that is running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from r4 import observe
from r4.flynotes import SqsAccess, utc_now
from r4.handlers import LoggingReporter, Reporter, RestartRequested
from r4.messages import Command, MalformedMessage, UnknownMessageType, parse_command
from r4.sync import UploadInterrupted

log = logging.getLogger(__name__)

# Error codes meaning "these credentials are no good any more": refresh before the next poll.
_CREDENTIAL_ERRORS = frozenset(
    (
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AccessDeniedException",
        "SignatureDoesNotMatch",
    )
)


@dataclass(frozen=True)
class LoopSettings:
    wait_time_seconds: int = 5  # long poll; also bounds how long a stop takes
    max_messages: int = 1  # one at a time, so a slow command doesn't hold others invisible
    visibility_timeout: int | None = None  # None: the queue's own setting
    retry_delay_seconds: int = 30  # how soon a failed message comes back
    refresh_margin: timedelta = timedelta(hours=1)
    min_refresh_interval: timedelta = timedelta(minutes=1)
    error_backoff_seconds: float = 5.0  # after SQS or the licence call itself failed
    max_error_backoff_seconds: float = 300.0
    endpoint_url: str | None = None  # tests and non-AWS deployments only


def make_sqs_client(access: SqsAccess, endpoint_url: str | None = None) -> Any:
    creds = access.credentials
    return boto3.session.Session().client(
        "sqs",
        region_name=access.region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        # The read timeout must outlast the long poll.
        config=Config(
            connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}
        ),
    )


class CommandLoop:
    """Run with `run(stop)` in a thread of its own; `poll_once()` does one receive cycle."""

    def __init__(
        self,
        handler: Callable[[Command], None],
        access: Callable[[], SqsAccess],
        *,
        reporter: Reporter | None = None,
        settings: LoopSettings | None = None,
        clock: Callable[[], datetime] = utc_now,
        client_factory: Callable[[SqsAccess, str | None], Any] = make_sqs_client,
    ) -> None:
        self._handler = handler
        self._access_provider = access
        self._reporter = reporter or LoggingReporter()
        self.settings = settings or LoopSettings()
        self._clock = clock
        self._client_factory = client_factory
        self._access: SqsAccess | None = None
        self._client: Any = None
        self._refreshed_at: datetime | None = None
        self.credential_refreshes = 0

    @property
    def credentials_expire_at(self) -> datetime | None:
        return self._access.credentials.expires_at if self._access else None

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set. Only RestartRequested escapes."""
        failures = 0
        while not stop.is_set():
            try:
                self.poll_once(stop)
                failures = 0
            except RestartRequested:
                raise
            except Exception as exc:
                failures += 1
                self._reporter.report_exception(
                    exc, extra={"where": "sqs command loop", "consecutive_failures": failures}
                )
                # Doubling, capped: an SQS or Flynotes outage must not flood Rollbar.
                stop.wait(
                    min(
                        self.settings.error_backoff_seconds * 2 ** (failures - 1),
                        self.settings.max_error_backoff_seconds,
                    )
                )

    def poll_once(self, stop: threading.Event | None = None) -> int:
        """Receive once (long poll) and process what came; returns the number of messages."""
        client, queue_url = self._current_client()
        kwargs: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": self.settings.max_messages,
            "WaitTimeSeconds": self.settings.wait_time_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if self.settings.visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = self.settings.visibility_timeout
        try:
            messages = client.receive_message(**kwargs).get("Messages", [])
        except ClientError as exc:
            self._forget_credentials_if_rejected(exc)
            raise
        for message in messages:
            if stop is not None and stop.is_set():
                # Not processed: it becomes visible again when its visibility timeout ends.
                break
            self._process(client, queue_url, message)
        return len(messages)

    def _current_client(self) -> tuple[Any, str]:
        now = self._clock()
        access = self._access
        expiring = (
            access is None or access.credentials.expires_at - now < self.settings.refresh_margin
        )
        recently = (
            self._refreshed_at is not None
            and now - self._refreshed_at < self.settings.min_refresh_interval
        )
        if self._client is None or (expiring and not recently):
            self._refreshed_at = now  # attempts count too: a down Flynotes isn't hammered
            try:
                access = self._access_provider()
            except Exception as exc:
                still_valid = (
                    self._client is not None
                    and self._access is not None
                    and self._access.credentials.expires_at > now
                )
                if not still_valid:
                    raise
                # Keep polling with what we have; the refresh is tried again next interval.
                self._reporter.report_exception(exc, extra={"where": "credential refresh"})
            else:
                self._client = self._client_factory(access, self.settings.endpoint_url)
                self._access = access
                self.credential_refreshes += 1
                log.info(
                    "SQS credentials refreshed; they expire at %s",
                    access.credentials.expires_at.isoformat(),
                )
        assert self._access is not None
        return self._client, self._access.queue_url

    def _forget_credentials_if_rejected(self, exc: ClientError) -> None:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _CREDENTIAL_ERRORS:
            self._client = None  # rebuilt with fresh credentials on the next poll

    def _process(self, client: Any, queue_url: str, message: dict[str, Any]) -> None:
        message_id = message.get("MessageId", "?")
        receipt = message["ReceiptHandle"]
        receives = message.get("Attributes", {}).get("ApproximateReceiveCount")
        context: dict[str, Any] = {"message_id": message_id, "receive_count": receives}
        try:
            command = parse_command(message.get("Body", ""))
        except UnknownMessageType as exc:
            observe.command_handled("unknown", "refused")
            self._reporter.report_message(f"SQS: {exc}", level="warning", extra=context)
            self._retry_later(client, queue_url, receipt)
            return
        except MalformedMessage as exc:
            observe.command_handled("malformed", "refused")
            self._reporter.report_message(
                f"SQS: malformed message: {exc}", level="warning", extra=context
            )
            self._retry_later(client, queue_url, receipt)
            return
        context["type"] = command.type
        log.info("SQS: handling %s (message %s)", command.type, message_id)
        try:
            self._handler(command)
        except RestartRequested:
            observe.command_handled(command.type, "done")
            self._delete(client, queue_url, receipt, context)
            raise
        except UploadInterrupted:
            observe.command_handled(command.type, "interrupted")
            log.info("SQS: %s interrupted by shutdown; it will be redelivered", command.type)
            self._retry_later(client, queue_url, receipt)
            return
        except Exception as exc:
            observe.command_handled(command.type, "failed")
            self._reporter.report_exception(exc, extra={**context, "where": "command handler"})
            self._retry_later(client, queue_url, receipt)
            return
        observe.command_handled(command.type, "done")
        self._delete(client, queue_url, receipt, context)

    def _delete(self, client: Any, queue_url: str, receipt: str, context: dict[str, Any]) -> None:
        try:
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)
        except (ClientError, BotoCoreError) as exc:
            # The command was done; a redelivery repeats it, and every handler is idempotent.
            self._reporter.report_exception(exc, extra={**context, "where": "delete message"})

    def _retry_later(self, client: Any, queue_url: str, receipt: str) -> None:
        try:
            client.change_message_visibility(
                QueueUrl=queue_url,
                ReceiptHandle=receipt,
                VisibilityTimeout=self.settings.retry_delay_seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            # Harmless: the message comes back when its own visibility timeout ends.
            log.warning("SQS: could not shorten visibility (%s)", type(exc).__name__)
