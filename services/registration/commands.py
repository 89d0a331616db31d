"""`bbi partner ...`: partner platforms and their API keys."""
from __future__ import annotations

import click

from services.common.db.engine import make_engine
from services.common.reference import PLATFORMS
from services.registration.config import load_settings
from services.registration.partner import handlers as partners


@click.group()
def commands() -> None:
    """Registration service commands."""


@commands.group()
def partner() -> None:
    """Partner platforms allowed to report onboarded merchants."""


@partner.command("create")
@click.option("--code", required=True, help="short partner code, e.g. tokopedia")
@click.option("--platform", type=click.Choice(sorted(PLATFORMS)), required=True)
@click.option("--name", required=True)
def create(code: str, platform: str, name: str) -> None:
    """Create a partner and print its API key once (only its hash is stored)."""
    settings = load_settings()
    key = partners.create_partner(make_engine(settings.database_url), settings, code,
                                  platform, name)
    click.echo(key)
