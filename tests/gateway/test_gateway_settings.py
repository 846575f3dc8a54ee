"""Settings from a TOML file and the environment, and their documentation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.core.settings import CONFIG_ENV, Settings
from gateway.core.settings_doc import render

ROOT = Path(__file__).resolve().parents[2]


def test_the_configuration_doc_matches_the_code():
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == render(), (
        "regenerate it: python -m gateway.core.settings_doc > docs/configuration.md"
    )


def test_toml_file_then_environment(tmp_path, monkeypatch):
    config = tmp_path / "gateway.toml"
    config.write_text(
        'ae_title = "FROMFILE"\ndicom_port = 4000\n\n'
        '[[pacs]]\nname = "main"\nae_title = "PACS"\nhost = "10.1.2.3"\nport = 104\n',
        encoding="utf-8",
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("PACS_GATEWAY_DICOM_PORT", "4100")

    settings = Settings()

    assert settings.ae_title == "FROMFILE"
    assert settings.dicom_port == 4100
    assert settings.peer().label == "main"
    assert settings.peer("main").host == "10.1.2.3"
    assert settings.database_url == f"sqlite:///{Path('var') / 'gateway.db'}"


def test_a_missing_config_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.toml"))
    with pytest.raises(FileNotFoundError, match=r"nope\.toml does not exist"):
        Settings()


def test_unknown_settings_are_refused(monkeypatch, tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text('ae_titel = "TYPO"\n', encoding="utf-8")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    with pytest.raises(ValidationError, match="ae_titel"):
        Settings()


def test_asking_for_an_unconfigured_pacs_lists_the_known_ones():
    settings = Settings(pacs=[{"name": "main", "ae_title": "A", "host": "h"}])
    with pytest.raises(LookupError, match=r"No PACS named 'other' is configured \(known: main\)"):
        settings.peer("other")
