"""API keys: KeyStore and the `keys` command."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from gateway.cli.keys import keys_app
from gateway.core.keys import AmbiguousKeyName, KeyNotFound, KeyStore

KEY_FORMAT = re.compile(r"^pgw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(gateway, clock) -> KeyStore:
    return KeyStore(gateway.engine, cache_ttl=10, clock=clock)


def test_create_and_authenticate(store):
    key, plaintext = store.create("r4-sync", "service")
    assert KEY_FORMAT.match(plaintext)
    assert store.authenticate(plaintext) == key
    assert (key.name, key.role, key.active) == ("r4-sync", "service", True)
    assert store.authenticate(plaintext + "x") is None
    assert store.authenticate(plaintext.replace(key.id, "0" * 16)) is None
    assert store.authenticate("") is None and store.authenticate("pgw__") is None


def test_only_the_hash_is_stored(store, gateway):
    _, plaintext = store.create("r4-sync", "service")
    secret = plaintext.split("_", 2)[2]
    with gateway.engine.connect() as conn:
        dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM api_key"))
    assert secret not in dump


def test_refuses_unknown_roles_and_duplicate_names(store):
    with pytest.raises(ValueError, match="role"):
        store.create("x", "root")
    store.create("x", "staff")
    with pytest.raises(ValueError, match="already named"):
        store.create("x", "admin")


def test_revoke_by_name_or_id(store):
    store.create("a", "staff")
    b, _ = store.create("b", "staff")
    assert store.revoke("a").revoked_at is not None
    assert store.revoke(b.id).revoked_at is not None
    assert store.revoke(b.id).revoked_at is not None  # again: no change, no error
    with pytest.raises(KeyNotFound):
        store.revoke("nobody")
    assert [k.active for k in store.list()] == [False, False]


def test_revoke_by_ambiguous_name(store, gateway):
    store.create("twin", "staff")
    other = KeyStore(gateway.engine)
    # Two active keys with one name can only come from the database's past; refuse to guess.
    with gateway.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE api_key SET name = 'twin'")
        conn.exec_driver_sql(
            "INSERT INTO api_key (id, name, role, secret_hash, created_at) "
            "SELECT 'ffffffffffffffff', name, role, secret_hash, created_at FROM api_key"
        )
    with pytest.raises(AmbiguousKeyName):
        other.revoke("twin")


def test_revocation_elsewhere_is_seen_within_the_ttl(store, gateway, clock):
    key, plaintext = store.create("poller", "service")
    assert store.authenticate(plaintext) == key
    KeyStore(gateway.engine).revoke(key.id)  # e.g. the CLI, another process
    clock.now += 5
    assert store.authenticate(plaintext) == key  # cached: the documented window
    assert store.cached(plaintext) == (True, key)
    clock.now += 6
    assert store.cached(plaintext) == (False, None)
    assert store.authenticate(plaintext) is None


def test_revocation_here_is_immediate(store):
    key, plaintext = store.create("poller", "service")
    assert store.authenticate(plaintext) == key
    store.revoke(key.id)
    assert store.authenticate(plaintext) is None


def test_cache_answers_without_the_database(store, gateway, clock):
    key, plaintext = store.create("poller", "service")
    store.authenticate(plaintext)
    gateway.engine.dispose()
    with gateway.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM api_key")
    assert store.cached(plaintext) == (True, key)
    assert store.cached("pgw_0123456789abcdef_unknown") == (False, None)
    store.authenticate("pgw_0123456789abcdef_unknown")
    assert store.cached("pgw_0123456789abcdef_unknown") == (True, None)  # misses are cached too


# -- the `keys` command -----------------------------------------------------------------


@pytest.fixture
def cli(settings):
    runner = CliRunner()
    env = {"PACS_GATEWAY_DATABASE_URL": settings.database_url}

    def run(*args: str):
        return runner.invoke(keys_app, list(args), env=env)

    return run


def test_cli_create_list_revoke(cli, client):
    created = cli("create", "--name", "r4-sync", "--role", "service")
    assert created.exit_code == 0, created.output
    [plaintext] = re.findall(r"pgw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", created.output)
    assert created.output.count(plaintext) == 1
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/jobs", headers=headers).status_code == 200

    listed = cli("list")
    assert listed.exit_code == 0 and "r4-sync" in listed.output and "service" in listed.output
    assert plaintext not in listed.output and plaintext.split("_", 2)[2] not in listed.output

    revoked = cli("revoke", "r4-sync")
    assert revoked.exit_code == 0 and "Revoked" in revoked.output
    assert "revoked" in cli("list").output
    # The app's cache holds the key for up to its TTL; a fresh KeyStore (what a restarted or
    # other gateway process has) refuses it at once.
    client.app.state.keys = KeyStore(client.app.state.gateway.engine)
    assert client.get("/api/v1/jobs", headers=headers).status_code == 401


def test_cli_refuses_bad_input(cli):
    assert cli("create", "--name", "x", "--role", "root").exit_code != 0
    missing = cli("revoke", "nobody")
    assert missing.exit_code == 1 and "No active key" in missing.output


def test_keys_is_a_subcommand_of_pacs_gateway(settings):
    from gateway.cli.main import app

    result = CliRunner().invoke(
        app, ["keys", "list"], env={"PACS_GATEWAY_DATABASE_URL": settings.database_url}
    )
    assert result.exit_code == 0, result.output
    assert "No API keys yet" in result.output
