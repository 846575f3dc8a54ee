"""Fixtures for the preview, viewer-link and DICOMweb tests.

`tests/gateway` goes on sys.path for its serve-process helpers. Most tests here file demo
studies straight into a Gateway's store and index (a fetch is not what they test); the
DICOMweb client test fetches for real from Orthanc.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import demo_studies
import pytest
from demo_studies import DemoCatalog, DemoStudy
from fastapi.testclient import TestClient
from orthanc_server import free_port

from gateway.app import create_app
from gateway.core.settings import Settings
from gateway.service import Gateway
from pacs.models import Instance, PacsPatient, Study

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gateway"))

PACS_NAME = "test-pacs"


@pytest.fixture(scope="session")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> DemoCatalog:
    """Every demo study, with a short CT so generation stays quick."""
    return demo_studies.generate(tmp_path_factory.mktemp("web-demo"), ct_slices=12)


def web_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "dicom_port": free_port(),
        "dicom_bind": "127.0.0.1",
        "workers": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def file_study() -> Callable[[Gateway, DemoStudy], None]:
    """A fixture, not an import: conftest modules are not importable by name reliably."""
    return _file_study


def _file_study(gateway: Gateway, study: DemoStudy) -> None:
    """Put a demo study into the gateway's store and index, as a finished fetch would."""
    instances, sizes = [], {}
    for series in study.series:
        for item in series.instances:
            target = gateway.node.store.path_for(
                study.study_uid, series.series_uid, item.sop_instance_uid
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.path, target)
            sizes[item.sop_instance_uid] = target.stat().st_size
            instances.append(
                Instance(
                    study.study_uid,
                    series.series_uid,
                    item.sop_instance_uid,
                    series.sop_class_uid,
                    len(instances) + 1,
                )
            )
    found = Study(
        study_uid=study.study_uid,
        patient=PacsPatient(patient_id=study.patient_id),
        study_date=datetime.strptime(study.date, "%Y%m%d").date(),
        description=study.description,
        modalities=tuple(sorted(study.modalities)),
    )
    gateway.index.record_study(PACS_NAME, found, instances, sizes, job_id=None)


@pytest.fixture
def make_client(tmp_path) -> Iterator[Callable[..., tuple[TestClient, Gateway, str]]]:
    """make_client(**settings) -> (TestClient, Gateway, plaintext API key)."""
    clients: list[TestClient] = []

    def make(**overrides: object) -> tuple[TestClient, Gateway, str]:
        gateway = Gateway(web_settings(tmp_path / f"var{len(clients)}", **overrides))
        app = create_app(gateway)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        _, key = app.state.keys.create("web-test", "clinician")
        client.headers["Authorization"] = f"Bearer {key}"
        return client, gateway, key

    yield make
    for client in clients:
        client.__exit__(None, None, None)
