"""Fixtures for the review queue, links and audit: a real Gateway on a temp SQLite file, an
R4 SQLite database holding the demo catalog's people, the app driven through TestClient.

The R4 database (orthanc-test/demo_practice.py) has patients 1001 ... 1006 with the names and
birth dates of the demo studies, twins 1005/1006 among them, and generated patients from 5000.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from demo_practice import write_demo_practice
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.core.keys import ROLES
from gateway.core.settings import Settings
from gateway.fetch.plan import found_by_name
from gateway.matching import MatchDecision
from gateway.review import ReviewItem, ReviewOrigin
from gateway.service import Gateway
from pacs.models import PacsPatient, PersonName, Study
from testkit.gateways import closed_pacs_settings

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "gateway") not in sys.path:  # gateway_testkit, for the Orthanc test
    sys.path.insert(0, str(TESTS / "gateway"))

PACS_NAME = "main-pacs"
ID_PREFIX = "R4-"  # the demo practice's id rule: PACS id R4-1003 is chart number 1003


@pytest.fixture(scope="session")
def r4_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_demo_practice(tmp_path_factory.mktemp("r4") / "r4.db")


@pytest.fixture
def settings(tmp_path, r4_url) -> Settings:
    # No workers: jobs stay queued, the tests look at what was submitted.
    return closed_pacs_settings(
        tmp_path / "var", pacs_name=PACS_NAME, r4_database_url=r4_url, pacs_id_rule_prefix=ID_PREFIX
    )


@pytest.fixture
def gateway(settings) -> Gateway:
    return Gateway(settings)


@pytest.fixture
def client(gateway) -> Iterator[TestClient]:
    with TestClient(create_app(gateway), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def keys(client) -> dict[str, str]:
    """One plaintext key per role, named test-<role>."""
    store = client.app.state.keys
    return {role: store.create(f"test-{role}", role)[1] for role in ROLES}


@pytest.fixture
def auth(keys) -> Callable[[str], dict[str, str]]:
    def headers(role: str = "staff") -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    return headers


@dataclass(frozen=True)
class Pacs:
    """A PACS patient as C-FIND answers, with one of their studies."""

    patient_id: str
    name: str
    birth_date: date | None
    sex: str
    issuer: str = ""
    study_uid: str = "1.2.826.0.1.3680043.8.498.1"
    description: str = "Panoramic"
    modalities: tuple[str, ...] = ("PX",)

    def patient(self) -> PacsPatient:
        return PacsPatient(
            self.patient_id,
            PersonName.parse(self.name),
            self.birth_date,
            self.sex,
            issuer_of_patient_id=self.issuer,
        )

    def study(self) -> Study:
        return Study(
            self.study_uid,
            self.patient(),
            study_date=date(2024, 8, 12),
            description=self.description,
            modalities=self.modalities,
            number_of_instances=1,
        )


# One of the twins (R4 1005 Chidi / 1006 Chinedu, same birth date) filed under an outside id.
TWIN = Pacs("X-55501", "Okafor^Chidi", date(2012, 5, 9), "M", issuer="NORTHSIDE-RADIOLOGY")


def review_decision(gateway: Gateway, patient: PacsPatient) -> MatchDecision:
    """The matcher's decision as gateway.fetch.plan queues a name-query hit: a review
    decision with found_by_name first, even when the matcher would link it."""
    matcher = gateway.patients.matcher()
    assert matcher is not None
    return found_by_name(matcher.match(patient))


# What a problem must never repeat: the PACS patient, and the R4 ids the tests send.
PATIENT_VALUES = [
    TWIN.patient_id,
    TWIN.issuer,
    "Okafor",
    "Chidi",
    "Chinedu",
    "2012-05-09",
    "20120509",
    "4999",
    "1005",
    "1006",
]


def _assert_problem(answer: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["title"] and body["detail"].endswith(".")
    if kind:
        assert body["type"] == f"urn:pacs-gateway:problem:{kind}"
    shown = {k: v for k, v in body.items() if k != "instance"}  # a random uuid
    leaked = [v for v in PATIENT_VALUES if v.lower() in str(shown).lower()]
    assert leaked == [], body
    return body


@pytest.fixture
def assert_problem() -> Callable[..., dict[str, Any]]:
    """`assert_problem(answer, status, kind=None)`: a problem+json answer with this status
    (and kind) and no patient value (PATIENT_VALUES) in it; returns its body."""
    return _assert_problem


@pytest.fixture
def twin() -> Pacs:
    """One of the twins (R4 1005 / 1006) under an outside PACS id: never auto-linked."""
    return TWIN


@pytest.fixture(name="review_decision")
def review_decision_fixture() -> Callable[[Gateway, PacsPatient], MatchDecision]:
    return review_decision


@pytest.fixture
def pacs_name() -> str:
    return PACS_NAME


QueueStudy = Callable[..., tuple[ReviewItem, bool]]


@pytest.fixture
def queue_study(gateway) -> QueueStudy:
    """`queue_study(pacs=TWIN, origin=..., pacs_name=..., **changes)` -> (item, created)."""

    def add(
        pacs: Pacs = TWIN,
        *,
        origin: ReviewOrigin = ReviewOrigin.NAME_QUERY,
        pacs_name: str | None = PACS_NAME,
        job_id: str | None = None,
        **changes: object,
    ) -> tuple[ReviewItem, bool]:
        pacs = replace(pacs, **changes)
        patient = pacs.patient()
        decision = review_decision(gateway, patient)
        details = gateway.patients.details([c.r4_patient_id for c in decision.candidates])
        return gateway.review.add(
            origin=origin,
            pacs_name=pacs_name,
            patient=patient,
            study=pacs.study(),
            decision=decision,
            details=details,
            job_id=job_id,
        )

    return add
