"""The worker process exits when one of its threads ends on its own (so it gets restarted)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.common.config import Settings
from services.common.messaging.worker import Worker


def _worker() -> Worker:
    settings = Settings.from_env("demo", database_url="sqlite://")
    return Worker(settings, sa.create_engine("sqlite://"), sa.MetaData(), [], relay=False)


def test_a_thread_that_died_makes_the_worker_exit_non_zero() -> None:
    w = _worker()
    w._spawn("consumer-demo", lambda: None)  # ends at once, as a crashed loop would
    w._threads[0].join(5)
    with pytest.raises(SystemExit) as exc:
        w.exit_if_a_thread_died()
    assert exc.value.code == 3


def test_live_threads_and_a_requested_stop_do_not_exit() -> None:
    w = _worker()
    w._spawn("consumer-demo", lambda: w._stop.wait(30))
    w.exit_if_a_thread_died()  # alive: nothing happens
    w.stop()
    w.exit_if_a_thread_died()  # ended because we asked it to: nothing happens
