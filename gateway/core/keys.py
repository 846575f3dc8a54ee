"""API keys: created by an operator, shown once, stored as a hash, each with one role.

A key reads `pgw_<id>_<secret>`. The id (16 hex digits) finds the row; the secret is checked
against its stored sha256 with a constant-time comparison. The secret has 256 bits of
entropy, so a plain (unsalted, fast) hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.core.models import api_key

ROLES: tuple[str, ...] = ("service", "clinician", "staff", "admin")
PREFIX = "pgw"
ID_HEX_DIGITS = 16  # the api_key.id column holds 16 characters
CACHE_TTL_SECONDS = 10.0
# Entries for made-up ids are cached too (so a client looping with a bad key cannot reach the
# database at request rate); the cap keeps a flood of distinct made-up ids from growing memory.
CACHE_MAX_ENTRIES = 4096


class KeyNotFound(LookupError):
    """No key has this id or name."""


class AmbiguousKeyName(LookupError):
    """Several active keys share this name: revoke by id."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class _Cached:
    key: ApiKey | None  # None: no key with this id
    secret_hash: str
    expires: float


class KeyStore:
    """API keys in the `api_key` table.

    `authenticate` keeps each key's row in an in-process cache for `cache_ttl` seconds, so a
    poller at thousands of requests per second costs no database query per request. The price:
    a key revoked by another process (the `keys revoke` command, another gateway) still works
    here for up to `cache_ttl` seconds. Revoking through this KeyStore takes effect here at once.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        cache_ttl: float = CACHE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.cache_ttl = cache_ttl
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which exists only in the return value: show it once."""
        name = name.strip()
        if role not in ROLES:
            raise ValueError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
        if not name or len(name) > 128:
            raise ValueError("A key needs a name of 1 to 128 characters, e.g. 'r4-sync'.")
        if any(k.name == name and k.active for k in self.list()):
            raise ValueError(f"An active key is already named {name!r}; choose another name.")
        key_id = secrets.token_hex(ID_HEX_DIGITS // 2)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, name, role, datetime.now(UTC), None)
        with self.engine.begin() as conn:
            conn.execute(
                api_key.insert().values(
                    id=key.id,
                    name=key.name,
                    role=key.role,
                    secret_hash=_hash(secret),
                    created_at=key.created_at,
                )
            )
        self._forget(key_id)
        return key, f"{PREFIX}_{key_id}_{secret}"

    def revoke(self, id_or_name: str) -> ApiKey:
        """Revoke the key with this id, or the one active key with this name.

        Revoking a revoked key changes nothing. Raises KeyNotFound, AmbiguousKeyName."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(api_key).where(api_key.c.id == id_or_name)).first()
            if row is None:
                rows = conn.execute(
                    sa.select(api_key).where(
                        api_key.c.name == id_or_name, api_key.c.revoked_at.is_(None)
                    )
                ).all()
                if len(rows) > 1:
                    raise AmbiguousKeyName(
                        f"{len(rows)} active keys are named {id_or_name!r}; revoke one by id."
                    )
                if not rows:
                    raise KeyNotFound(f"No active key has the id or name {id_or_name!r}.")
                row = rows[0]
            if row.revoked_at is None:
                conn.execute(
                    api_key.update()
                    .where(api_key.c.id == row.id)
                    .values(revoked_at=datetime.now(UTC))
                )
            key_id = row.id
        self._forget(key_id)
        key, _ = self._load(key_id)
        if key is None:  # deleted by hand between the two transactions
            raise KeyNotFound(f"No key has the id {key_id!r}.")
        return key

    def list(self) -> list[ApiKey]:
        """Every key, active and revoked, oldest first (no secrets: only hashes are stored)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_key).order_by(api_key.c.created_at)).all()
        return [_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        """The key with this id as the database has it now (not cached: a page session
        re-checks its key on every request, so a revocation logs it out at once)."""
        return self._load(key_id)[0]

    def authenticate(self, plaintext: str) -> ApiKey | None:
        """The active key `plaintext` is, or None (malformed, unknown, wrong secret, revoked)."""
        parsed = _parse(plaintext)
        if parsed is None:
            return None
        key_id, secret = parsed
        entry = self._fresh(key_id)
        if entry is None:
            key, secret_hash = self._load(key_id)
            entry = _Cached(key, secret_hash, self._clock() + self.cache_ttl)
            with self._lock:
                if len(self._cache) >= CACHE_MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key_id] = entry
        return _check(entry, secret)

    def cached(self, plaintext: str) -> tuple[bool, ApiKey | None]:
        """`(True, authenticate(plaintext))` when that needs no database read, else
        `(False, None)`: lets an async caller read the database off its event loop."""
        parsed = _parse(plaintext)
        if parsed is None:
            return True, None
        key_id, secret = parsed
        entry = self._fresh(key_id)
        if entry is None:
            return False, None
        return True, _check(entry, secret)

    def _fresh(self, key_id: str) -> _Cached | None:
        with self._lock:
            entry = self._cache.get(key_id)
        if entry is None or entry.expires <= self._clock():
            return None
        return entry

    def _load(self, key_id: str) -> tuple[ApiKey | None, str]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_key).where(api_key.c.id == key_id)).first()
        if row is None:
            return None, ""
        return _key(row), row.secret_hash

    def _forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)


def _parse(plaintext: str) -> tuple[str, str] | None:
    parts = plaintext.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    _, key_id, secret = parts
    if len(key_id) != ID_HEX_DIGITS or not secret or len(secret) > 128:
        return None
    return key_id, secret


def _check(entry: _Cached, secret: str) -> ApiKey | None:
    # The id is no secret (it is in the key's name); the secret is compared in constant
    # time so response times do not tell how much of a guess was right.
    if not hmac.compare_digest(_hash(secret), entry.secret_hash):
        return None
    if entry.key is None or not entry.key.active:
        return None
    return entry.key


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: sa.Row) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=_utc(row.created_at),
        revoked_at=_utc(row.revoked_at) if row.revoked_at else None,
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for DateTime(timezone=True); they were stored as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
