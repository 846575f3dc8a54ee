"""Settings for gateways under test, shared by the fixtures and the process tests."""

from __future__ import annotations

from pathlib import Path

from pytest_orthanc import GATEWAY_AET

from gateway.core.settings import PacsSettings, Settings

FAST_RETRY = {"retry_initial_delay": 0.5, "retry_max_delay": 1.0, "retry_max_attempts": 30}


def gateway_settings(data_dir: Path, scp_port: int, orthanc, **overrides) -> Settings:
    values = {
        "ae_title": GATEWAY_AET,
        "dicom_port": scp_port,
        "dicom_bind": "127.0.0.1",
        "data_dir": data_dir,
        "lease_seconds": 5.0,
        "pacs": [
            PacsSettings(
                name="test-orthanc",
                ae_title=orthanc.ae_title,
                host="127.0.0.1",
                port=orthanc.dicom_port,
                connect_timeout=2.0,
                acse_timeout=5.0,
                dimse_timeout=30.0,
            )
        ],
        **FAST_RETRY,
        # Tests run on machines with any amount of free disk: the floor is tested on its own.
        "storage_min_free_gb": 0.0,
    }
    values.update(overrides)
    return Settings(**values)
