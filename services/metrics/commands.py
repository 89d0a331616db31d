"""`bbi metrics ...`: the service's operator commands (the bbi CLI adds this group)."""

from __future__ import annotations

import json

import click

from services.common.db.engine import make_engine
from services.metrics.config import load_settings


@click.group()
def commands() -> None:
    """Metrics service commands (added to the bbi CLI)."""


@commands.group()
def metrics() -> None:
    """The metrics aggregates."""


@metrics.command("rebuild")
@click.option(
    "--timeout", type=float, default=None, help="seconds (METRICS_REBUILD_TIMEOUT_SECONDS)"
)
def rebuild_cmd(timeout: float | None) -> None:
    """Recount every aggregate from the first event of the domain topics and swap it in."""
    from services.metrics.rebuild import rebuild

    settings = load_settings()
    engine = make_engine(settings.database_url)
    result = rebuild(settings, engine, timeout or settings.rebuild_timeout_seconds)
    click.echo(json.dumps(result, indent=2))
