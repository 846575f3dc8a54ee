"""A real Gateway on a temp SQLite file, no workers (jobs stay where the test puts them), one
PACS on a closed port; the app driven through TestClient, which runs its lifespan."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.core.keys import ROLES, KeyStore
from gateway.core.settings import Settings
from gateway.service import Gateway
from testkit.gateways import closed_pacs_settings

PACS_NAME = "main-pacs"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return closed_pacs_settings(tmp_path / "var", pacs_name=PACS_NAME)


@pytest.fixture
def gateway(settings) -> Gateway:
    return Gateway(settings)


@pytest.fixture
def app(gateway) -> FastAPI:
    return create_app(gateway)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def key_store(app) -> KeyStore:
    return app.state.keys


@pytest.fixture
def keys(key_store) -> dict[str, str]:
    """One plaintext key per role."""
    return {role: key_store.create(f"test-{role}", role)[1] for role in ROLES}


@pytest.fixture
def auth(keys) -> Callable[[str], dict[str, str]]:
    def headers(role: str = "service") -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    return headers
