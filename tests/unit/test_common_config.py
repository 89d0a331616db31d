"""A service's knobs are declared once (`knob`: variable and default on the field) and read,
typed, by `Settings.from_env`."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from services.common.config import Settings, as_service_settings, knob


@dataclass(frozen=True)
class DemoSettings(Settings):
    limit: int = knob("DEMO_LIMIT", 60)
    ratio: float = knob("DEMO_RATIO", 0.5)
    strict: bool = knob("DEMO_STRICT", False)
    version: str = knob("DEMO_VERSION", "2025-01")


def test_unset_knobs_take_their_declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for v in ("DEMO_LIMIT", "DEMO_RATIO", "DEMO_STRICT", "DEMO_VERSION"):
        monkeypatch.delenv(v, raising=False)
    s = DemoSettings.from_env("demo")
    assert (s.limit, s.ratio, s.strict, s.version) == (60, 0.5, False, "2025-01")


def test_knobs_are_read_typed_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_LIMIT", "7")
    monkeypatch.setenv("DEMO_RATIO", "0.25")
    monkeypatch.setenv("DEMO_STRICT", "true")
    monkeypatch.setenv("DEMO_VERSION", "2026-12")
    s = DemoSettings.from_env("demo", limit=9)
    assert (s.limit, s.ratio, s.strict, s.version) == (9, 0.25, True, "2026-12")
    assert isinstance(s.ratio, float) and isinstance(s.strict, bool)


def test_a_malformed_number_fails_at_start_not_in_a_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_LIMIT", "sixty")
    with pytest.raises(ValueError):
        DemoSettings.from_env("demo")


def test_plain_settings_become_the_service_s_own_keeping_shared_values(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_LIMIT", "3")
    plain = Settings.from_env("demo", database_url="sqlite://", topic_prefix="t-")

    def load(**overrides: object) -> DemoSettings:
        return DemoSettings.from_env("demo", **overrides)

    own = as_service_settings(plain, DemoSettings, load)
    assert isinstance(own, DemoSettings)
    assert (own.database_url, own.topic_prefix, own.limit) == ("sqlite://", "t-", 3)
    assert as_service_settings(own, DemoSettings, load) is own
