"""Training's and campaign's knobs are typed settings read once by load_settings (issue 17):
handlers receive them, and nothing in either service reads the environment at call time."""
from __future__ import annotations

import pytest

from services.campaign.config import CampaignSettings, campaign_settings
from services.common.config import REPO_ROOT, Settings
from services.training.config import TrainingSettings, load_settings, training_settings


def test_knobs_come_from_the_environment_with_their_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRAINING_DEFAULT_CAPACITY", "TRAINING_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRAINING_MAX_ATTENDANCE_ROWS", "7")
    s = load_settings(database_url="sqlite://")
    assert isinstance(s, TrainingSettings) and s.service == "training"
    assert (s.max_attendance_rows, s.default_capacity, s.trusted_proxies) == (7, 200, 0)
    assert load_settings(database_url="sqlite://", default_capacity=9).default_capacity == 9


def test_plain_settings_become_the_service_s_own_keeping_every_common_field(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMPAIGN_CLOCK_SKEW_SECONDS", "12")
    plain = Settings.from_env("campaign", database_url="sqlite:///x.db", topic_prefix="t1.")
    typed = campaign_settings(plain)
    assert isinstance(typed, CampaignSettings) and typed.clock_skew_seconds == 12
    assert (typed.service, typed.database_url, typed.topic_prefix) == (
        "campaign", "sqlite:///x.db", "t1.")
    assert campaign_settings(typed) is typed
    assert training_settings(Settings.from_env("training", database_url="sqlite://")).service \
        == "training"


@pytest.mark.parametrize("service", ["training", "campaign"])
def test_only_config_reads_the_environment(service: str) -> None:
    readers = [p.name for p in sorted((REPO_ROOT / "services" / service).glob("*.py"))
               if "os.environ" in p.read_text(encoding="utf-8") or "getenv" in
               p.read_text(encoding="utf-8")]
    # worker.py reads its /metrics port at start-up, outside any handler.
    assert set(readers) <= {"worker.py"}, readers
