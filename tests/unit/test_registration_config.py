"""Registration's knobs are typed settings read once, not the environment at call time."""
from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from services.common.config import Settings
from services.registration.app import create_app
from services.registration.config import RegistrationSettings, load_settings
from tests.unit.registration_helpers import sqlite_url


def test_knobs_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", "7")
    monkeypatch.setenv("REGISTRATION_CONSENT_VERSION", "2031-02")
    s = load_settings(database_url="sqlite://")
    assert (s.rate_limit, s.consent_version, s.partner_max_items) == (7, "2031-02", 10_000)
    monkeypatch.setenv("REGISTRATION_RATE_LIMIT", "8")
    assert s.rate_limit == 7  # built once: a later change of the environment is not seen
    with pytest.raises(FrozenInstanceError):
        s.rate_limit = 9  # type: ignore[misc]


def test_the_app_adds_the_knobs_to_shared_settings(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRATION_PARTNER_MAX_ITEMS", "3")
    shared = Settings.from_env("registration", database_url=sqlite_url(tmp_path),
                               max_page_size=17)
    got = create_app(shared).config["BBI_SETTINGS"]
    assert isinstance(got, RegistrationSettings)
    assert (got.max_page_size, got.partner_max_items, got.service) == (17, 3, "registration")
