"""Error reporting to Rollbar, with patient data scrubbed from everything that leaves.

Usage::

    reporting.configure(access_token, environment="practice-1234")
    reporting.install_logging_handler()          # ERROR log records go to Rollbar too
    reporting.report_exception(exc, extra={"job_id": job.id})
    reporting.report_message("something odd", level="warning")

How patient data is kept out (defence in depth, every layer on every payload):
1. Rollbar's collection of frame local variables is switched off: locals are where patient
   records live while a handler fails.
2. Before the traceback is turned into a payload, the values of patient-like objects found in
   the failing frames' locals, in the exception's args and in `extra` (names, ids, chart
   numbers, birth dates, addresses, phone numbers, emails, notes) are collected; each of them
   is then redacted wherever it appears in the payload, e.g. inside an exception message.
3. A payload handler (`rollbar.events.add_payload_handler`) walks the final payload: values
   under patient-ish keys (PatientName, family_name, birth_date, address, ...) are replaced,
   and strings are cleaned of emails, dates, phone numbers, DICOM person names
   (FAMILY^GIVEN), DICOM patient attributes and `field=value` reprs of patient fields.
4. Rollbar's own `scrub_fields` get the same key names, as a last net.
Redaction errs towards over-scrubbing: a redacted date in a stack trace costs less than a
leaked birth date. `sensitive_values(...)` adds values to redact for a block of code.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from types import TracebackType
from typing import Any

import rollbar
from rollbar.lib import events

log = logging.getLogger(__name__)

REDACTED = "[scrubbed]"
DEFAULT_ENDPOINT = "https://api.rollbar.com/api/1/"

# Normalised (lower case, letters and digits only) key names whose values are patient data.
# The strong ones on their own mark a container as holding a patient (then all its sensitive
# keys, `id` included, are collected); weaker keys like `name` or `town` only count inside one.
_STRONG_KEYS = frozenset(
    (
        "familyname",
        "givenname",
        "firstname",
        "lastname",
        "middlename",
        "surname",
        "forename",
        "fullname",
        "preferredname",
        "patientname",
        "birthdate",
        "dateofbirth",
        "dob",
        "patientbirthdate",
        "chartnumber",
        "chartno",
        "patientid",
        "otherpatientids",
        "otherids",
        "nhsnumber",
        "mrn",
        "medicalrecordnumber",
        "email",
        "postcode",
        "addressline1",
        "homephone",
        "mobilephone",
        "workphone",
        "notes",
    )
)
_SENSITIVE_KEYS = _STRONG_KEYS | frozenset(
    (
        "name",
        "maidenname",
        "othernames",
        "patientbirthtime",
        "patientids",
        "issuerofpatientid",
        "patient",
        "patients",
        "record",
        "records",
        "details",
        "address",
        "line1",
        "line2",
        "town",
        "city",
        "county",
        "postalcode",
        "zipcode",
        "zip",
        "street",
        "phone",
        "mobile",
        "telephone",
        "telephonenumbers",
        "note",
        "medicalhistory",
        "sex",
        "patientsex",
        "patientage",
    )
)
_SENSITIVE_SUFFIXES = (
    "name",
    "address",
    "phone",
    "email",
    "birthdate",
    "patientid",
    "chartnumber",
    "postcode",
    "telephonenumbers",
)
_NOT_SENSITIVE = frozenset(
    (
        "filename",
        "hostname",
        "classname",
        "method",
        "queuename",
        "modulename",
        "funcname",
        "threadname",
        "processname",
        "loggername",
        "servicename",
        "distname",
        "aetitle",
        "username",
    )
)
# Keys whose values hold ids of things other than patients, kept for the object walk.
_PATIENT_ID_KEYS = frozenset(("id", "patientid"))
# Rollbar envelope fields that carry no patient data and must stay intact.
_ENVELOPE_KEYS = frozenset(
    (
        "uuid",
        "timestamp",
        "environment",
        "level",
        "language",
        "notifier",
        "server",
        "framework",
        "code_version",
        "access_token",
    )
)

# Exact key names for Rollbar's own scrubber (it matches keys, not normalised names).
ROLLBAR_SCRUB_FIELDS = (
    "family_name",
    "given_name",
    "first_name",
    "last_name",
    "middle_name",
    "preferred_name",
    "patient_name",
    "birth_date",
    "date_of_birth",
    "dob",
    "chart_number",
    "patient_id",
    "other_ids",
    "nhs_number",
    "address",
    "phone",
    "email",
    "notes",
    "medical_history",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "IssuerOfPatientID",
    "patientId",
    "familyName",
    "givenName",
    "birthDate",
    "chartNumber",
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATES = re.compile(
    r"\b(?:(?:19|20)\d\d-\d\d-\d\d|\d{1,2}[/.-]\d{1,2}[/.-](?:19|20)\d\d|(?:19|20)\d{6})\b"
)
_PHONE = re.compile(r"(?<![\w.])\+?\d[\d ()-]{7,}\d(?![\w.])")
_DICOM_PN = re.compile(r"[^\s^=\\'\"(),\[\]{}]+\^[^\s=\\'\"(),\[\]{}]*")
_DICOM_ATTR = re.compile(
    r"\b((?:Patient\w*|OtherPatientIDs\w*|IssuerOfPatientID)\b['\"]?\s*[:=]\s*)"
    r"('[^']*'|\"[^\"]*\"|[^\s,;)}\]]+)"
)
_DICOM_TAG_DUMP = re.compile(r"(\(0010,\s?[0-9A-Fa-f]{4}\)[^\n:]*:)[^\n]*")
_REPR_FIELD = re.compile(
    r"\b((?:family_name|given_name|middle_name|preferred_name|birth_date|chart_number|"
    r"other_ids|line1|line2|town|county|postcode|home_phone|work_phone|mobile_phone|email|"
    r"notes|title|address|contact|record)=)"
    r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\([^)]*\)|[^,)]*)"
)
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*\]")

_MIN_TEXT_LEN = 2
_MIN_ID_LEN = 3  # shorter numbers are everywhere (line numbers, counts) and identify no one
_WALK_DEPTH = 4
_WALK_ITEMS = 200

_pending = threading.local()  # values collected for the payload being built on this thread
_scoped: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "reporting_sensitive_values", default=()
)


def _normalise_key(key: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).lower())


def is_sensitive_key(key: object) -> bool:
    k = _normalise_key(key)
    if not k or k in _NOT_SENSITIVE:
        return False
    return (
        k in _SENSITIVE_KEYS
        or k.endswith(_SENSITIVE_SUFFIXES)
        or k.startswith(("addressline", "patient"))
    )


def _ascii_fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _variants(value: object, *, is_id: bool = False) -> Iterator[str]:
    """The spellings in which `value` could show up in text."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, datetime | date):
        d = value.date() if isinstance(value, datetime) else value
        yield from (
            d.isoformat(),
            d.strftime("%Y%m%d"),
            d.strftime("%d/%m/%Y"),
            d.strftime("%m/%d/%Y"),
            d.strftime("%d.%m.%Y"),
            d.strftime("%d-%m-%Y"),
            f"{d.year}, {d.month}, {d.day}",
        )  # repr: datetime.date(1961, 7, 14)
        return
    if isinstance(value, int | float):
        text = str(value)
        if len(text) >= _MIN_ID_LEN:
            yield text
        return
    if isinstance(value, str):
        text = value.strip()
        if len(text) < (_MIN_ID_LEN if is_id else _MIN_TEXT_LEN):
            return
        yield text
        folded = _ascii_fold(text)
        if folded != text:
            yield folded
        # Multi-part names turn up split and rejoined ("GARCIA^MARQUEZ").
        for part in re.split(r"[\s^,'-]+", folded):
            if len(part) >= 3:
                yield part
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in list(value)[:_WALK_ITEMS]:
            yield from _variants(item, is_id=is_id)


def _fields_of(obj: object) -> Mapping[Any, Any] | None:
    """The data fields of records, mappings, rows and models, without touching properties.

    Arbitrary objects are not walked: their attributes are rarely patient data and walking
    them (clients, engines, loggers) would only collect noise to redact.
    """
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
    if type(obj).__name__ == "Row" and hasattr(obj, "_mapping"):  # SQLAlchemy result rows
        return obj._mapping
    fields = getattr(type(obj), "model_fields", None)  # pydantic models
    if isinstance(fields, dict):
        return {name: getattr(obj, name, None) for name in fields}
    return None


def collect_sensitive_values(obj: object, depth: int = _WALK_DEPTH) -> set[str]:
    """Patient values held by `obj` (a record, a mapping, a list of them, a frame's locals)."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk(value: object, depth: int) -> None:
        if depth < 0 or value is None or id(value) in seen:
            return
        if isinstance(value, str | bytes | int | float | date | type):
            return
        seen.add(id(value))
        if isinstance(value, list | tuple | set | frozenset):
            for item in list(value)[:_WALK_ITEMS]:
                walk(item, depth - 1)
            return
        fields = _fields_of(value)
        if fields is None:
            return
        try:
            items = list(fields.items())[:_WALK_ITEMS]
        except Exception:
            return
        patient_like = any(_normalise_key(k) in _STRONG_KEYS for k, _ in items)
        for key, item in items:
            norm = _normalise_key(key)
            if norm in _STRONG_KEYS or (
                patient_like and (is_sensitive_key(key) or norm in _PATIENT_ID_KEYS)
            ):
                found.update(_variants(item, is_id=norm in _PATIENT_ID_KEYS))
            walk(item, depth - 1)

    walk(obj, depth)
    return found


def _values_from_traceback(exc: BaseException | None) -> set[str]:
    found: set[str] = set()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        found |= collect_sensitive_values(list(exc.args))
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            found |= collect_sensitive_values(dict(tb.tb_frame.f_locals))
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return found


def _value_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    ordered = sorted({v for v in values if v}, key=len, reverse=True)
    if not ordered:
        return None
    alternation = "|".join(re.escape(v) for v in ordered)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def scrub_text(text: str, values: Iterable[str] = ()) -> str:
    """Redact known patient values and anything that looks like patient data from `text`."""
    pattern = _value_pattern(values)
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _SQL_PARAMETERS.sub(f"[parameters: {REDACTED}]", text)
    text = _DICOM_TAG_DUMP.sub(rf"\1 {REDACTED}", text)
    text = _DICOM_ATTR.sub(rf"\1{REDACTED}", text)
    text = _REPR_FIELD.sub(rf"\1{REDACTED}", text)
    text = _DICOM_PN.sub(REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    text = _DATES.sub(REDACTED, text)
    return _PHONE.sub(REDACTED, text)


def scrub_payload(payload: dict[str, Any], values: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of a Rollbar payload with patient data removed (see the module docstring)."""
    pattern_values = set(values) | set(_scoped.get())

    def clean(value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return scrub_text(value, pattern_values)
        if depth > 50:
            return REDACTED
        if isinstance(value, dict):
            return {
                k: REDACTED
                if is_sensitive_key(k) and v not in (None, "", [], {})
                else clean(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [clean(v, depth + 1) for v in value]
        return value

    result = dict(payload)
    data = payload.get("data")
    if isinstance(data, dict):
        result["data"] = {k: v if k in _ENVELOPE_KEYS else clean(v, 0) for k, v in data.items()}
    return result


# --- rollbar event hooks -------------------------------------------------------------------


def _remember(values: set[str]) -> None:
    current: set[str] = getattr(_pending, "values", set())
    _pending.values = current | values


def _on_exception_info(exc_info: Any, **kw: Any) -> Any:
    try:
        _remember(
            _values_from_traceback(exc_info[1]) | collect_sensitive_values(kw.get("extra_data"))
        )
    except Exception:  # never lose the report because the walk tripped
        _remember({REDACTED})
    return exc_info


def _on_message(message: Any, **kw: Any) -> Any:
    _remember(collect_sensitive_values(kw.get("extra_data")))
    return message


def _on_payload(payload: Any, **kw: Any) -> Any:
    values: set[str] = getattr(_pending, "values", set())
    _pending.values = set()
    return scrub_payload(payload, values)


# --- public API ----------------------------------------------------------------------------


def configure(
    access_token: str,
    environment: str = "production",
    *,
    endpoint: str | None = None,
    code_version: str | None = None,
    handler: str = "thread",
    timeout: float = 5.0,
    enabled: bool = True,
) -> None:
    """Set up the rollbar client; safe to call again (tests point `endpoint` at a recorder).

    `handler="blocking"` sends before returning (tests, and process exit paths).
    """
    settings: dict[str, Any] = {
        "endpoint": endpoint or DEFAULT_ENDPOINT,
        "handler": handler,
        "timeout": timeout,
        "enabled": enabled,
        "code_version": code_version,
        "locals": {"enabled": False},
        "capture_ip": False,
        "capture_email": False,
        "capture_username": False,
        "include_request_body": False,
        "log_payload_on_error": False,
        "allow_logging_basic_config": False,
        "suppress_reinit_warning": True,
    }
    scrub_fields = [*rollbar.SETTINGS["scrub_fields"], *ROLLBAR_SCRUB_FIELDS]
    rollbar.init(access_token, environment, scrub_fields=sorted(set(scrub_fields)), **settings)
    # rollbar.init ignores the token and environment after the first call; its SETTINGS
    # dict is the documented way to change them.
    rollbar.SETTINGS["access_token"] = access_token
    rollbar.SETTINGS["environment"] = environment
    events.add_exception_info_handler(_on_exception_info)
    events.add_message_handler(_on_message)
    events.add_payload_handler(_on_payload)


def report_exception(
    exc: BaseException | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    level: str = "error",
) -> None:
    """Report `exc` (default: the exception being handled). Never raises."""
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else sys.exc_info()
    rollbar.report_exc_info(exc_info, extra_data=dict(extra or {}), level=level)


def report_message(
    message: str, level: str = "error", extra: Mapping[str, Any] | None = None
) -> None:
    rollbar.report_message(message, level=level, extra_data=dict(extra or {}))  # type: ignore[arg-type]


def flush() -> None:
    """Wait for reports still being sent by background threads (handler="thread")."""
    rollbar.wait()


@contextlib.contextmanager
def sensitive_values(*values: object) -> Iterator[None]:
    """Redact these values (and their spellings) from any report made inside the block."""
    extra = tuple(v for value in values for v in _variants(value))
    token = _scoped.set(_scoped.get() + extra)
    try:
        yield
    finally:
        _scoped.reset(token)


class RollbarReporter:
    """The `r4.handlers.Reporter` the practice side takes."""

    def report_message(
        self, message: str, level: str = "error", extra: Mapping[str, Any] | None = None
    ) -> None:
        report_message(message, level, extra)

    def report_exception(
        self, exc: BaseException | None = None, *, extra: Mapping[str, Any] | None = None
    ) -> None:
        report_exception(exc, extra=extra)


class RollbarLoggingHandler(logging.Handler):
    """Sends log records at or above its level (ERROR by default) to Rollbar."""

    def __init__(self, level: int = logging.ERROR) -> None:
        super().__init__(level)
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        # rollbar logs its own delivery failures: forwarding those would loop.
        if (
            record.name == "rollbar"
            or record.name.startswith("rollbar.")
            or getattr(self._busy, "active", False)
        ):
            return
        self._busy.active = True
        try:
            # Arguments interpolated into the message may be patient records.
            _remember(collect_sensitive_values(record.args))
            extra = {"logger": record.name, "log_message": record.getMessage()}
            level = record.levelname.lower()
            if level not in ("critical", "error", "warning", "info", "debug"):
                level = "error"
            if record.exc_info and record.exc_info[1] is not None:
                rollbar.report_exc_info(record.exc_info, extra_data=extra, level=level)
            else:
                rollbar.report_message(
                    extra["log_message"],
                    level=level,  # type: ignore[arg-type]
                    extra_data={"logger": record.name},
                )
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False


def install_logging_handler(
    logger: logging.Logger | None = None, level: int = logging.ERROR
) -> RollbarLoggingHandler:
    """Attach a RollbarLoggingHandler (to the root logger by default) and return it."""
    handler = RollbarLoggingHandler(level)
    (logger or logging.getLogger()).addHandler(handler)
    return handler
