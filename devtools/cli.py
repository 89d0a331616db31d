"""`bbi`: local operations (Kafka broker, topics, migrations, tokens, the local run)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from devtools import local_kafka, registry
from services.common.config import REPO_ROOT, Settings
from services.common.messaging import topics as topics_module

KAFKA_DIR = REPO_ROOT / "var" / "kafka"
KAFKA_CLUSTER_DIR = REPO_ROOT / "var" / "kafka-cluster"
KEYCLOAK_DIR = REPO_ROOT / "var" / "keycloak"


@click.group()
def main() -> None:
    """Bangga Buatan Indonesia backend: local operations."""


# --- kafka -------------------------------------------------------------------------------
@main.group()
def kafka() -> None:
    """The local single-node Kafka broker (KRaft), fetched from Maven Central."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Download the broker jars (deploy/kafka/lib)."""
    click.echo(local_kafka.fetch())


@kafka.command("start")
@click.option("--port", default=9092, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=KAFKA_DIR)
@click.option("--foreground/--background", default=False,
              help="Foreground: stay attached and stop the broker on Ctrl-C/SIGTERM.")
@click.option("--nodes", type=click.IntRange(1, 5), default=1, show_default=True,
              help="3: the production topology (KRaft quorum of 3 combined nodes on ports "
                   "PORT..PORT+2, replication 3, min.insync.replicas 2), in var/kafka-cluster")
def kafka_start(port: int, data_dir: Path, foreground: bool, nodes: int) -> None:
    """Format storage if new, start the broker and wait until it answers."""
    local_kafka.fetch()
    if nodes > 1:
        from devtools import local_kafka_cluster

        cdir = KAFKA_CLUSTER_DIR if data_dir == KAFKA_DIR else data_dir
        cluster = local_kafka_cluster.start(cdir, nodes=nodes, base_port=port)
        click.echo(f"kafka cluster of {nodes} ready on {cluster.bootstrap} ({cdir})")
        return
    broker = local_kafka.start(port=port, data_dir=data_dir)
    click.echo(f"kafka ready on {broker.bootstrap} (pid {broker.pid})")
    if foreground:
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            if broker.process is not None:  # None only for a broker found by its pid file
                broker.process.wait()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            broker.stop()


@kafka.command("stop")
@click.option("--data-dir", type=click.Path(path_type=Path), default=KAFKA_DIR)
@click.option("--nodes", type=click.IntRange(1, 5), default=1,
              help="more than 1: stop the cluster (var/kafka-cluster unless --data-dir)")
def kafka_stop(data_dir: Path, nodes: int) -> None:
    """Stop the broker (or cluster) started from this data dir."""
    if nodes > 1:
        from devtools import local_kafka_cluster

        cdir = KAFKA_CLUSTER_DIR if data_dir == KAFKA_DIR else data_dir
        click.echo("stopped" if local_kafka_cluster.stop(cdir) else "not running")
        return
    click.echo("stopped" if local_kafka.stop_from_pidfile(data_dir) else "not running")


@main.group()
def keycloak() -> None:
    """The local identity provider (Keycloak, dev mode, realm bbi); devtools.local_keycloak."""


@keycloak.command("fetch")
def keycloak_fetch() -> None:
    """Download the Keycloak distribution (deploy/keycloak/dist) with Maven."""
    from devtools import local_keycloak

    click.echo(local_keycloak.fetch())


@keycloak.command("start")
@click.option("--port", default=8080, show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=KEYCLOAK_DIR)
def keycloak_start(port: int, data_dir: Path) -> None:
    """Start Keycloak on 127.0.0.1 (realm imported when the data dir is new) and wait."""
    import time

    from devtools import local_keycloak

    t0 = time.monotonic()
    kc = local_keycloak.start(port=port, data_dir=data_dir)
    click.echo(f"keycloak ready in {time.monotonic() - t0:.0f}s: issuer {kc.issuer} "
               f"(admin console {kc.base_url}/admin, user admin, password in "
               f"{data_dir / 'local-keycloak.json'}; mails in {kc.mail_dir})")


@keycloak.command("stop")
@click.option("--data-dir", type=click.Path(path_type=Path), default=KEYCLOAK_DIR)
@click.option("--reset", is_flag=True, help="also delete its data (users, keys, mails)")
def keycloak_stop(data_dir: Path, reset: bool) -> None:
    """Stop the Keycloak (and its SMTP sink) started from this data dir."""
    import shutil

    from devtools import local_keycloak

    click.echo("stopped" if local_keycloak.stop_from_pidfile(data_dir) else "not running")
    if reset:
        shutil.rmtree(data_dir, ignore_errors=True)


@main.group()
def topics() -> None:
    """Kafka topics of DESIGN §3."""


@topics.command("ensure")
@click.option("--partitions", type=int, default=None)
@click.option("--replication", type=int, default=None)
def topics_ensure(partitions: int | None, replication: int | None) -> None:
    """Create the domain and dead-letter topics if missing."""
    created = topics_module.ensure_contract_topics(Settings.from_env("cli"), partitions,
                                                   replication)
    click.echo(f"created: {', '.join(created) or 'none (all present)'}")


# --- database ------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Schema migrations (Alembic), one history per service."""


@db.command("upgrade")
@click.argument("services", nargs=-1)
def db_upgrade(services: tuple[str, ...]) -> None:
    """Apply migrations (all available services when none is named)."""
    from services.common.db.migrations import upgrade

    for name in services or registry.SERVICES:
        url = registry.module(name, "config").load_settings().database_url
        upgrade(name, url)
        click.echo(f"{name}: at head")


@db.command("revision")
@click.argument("service")
@click.option("-m", "--message", required=True)
def db_revision(service: str, message: str) -> None:
    """Autogenerate a revision by comparing the models with a scratch SQLite database."""
    import tempfile

    from alembic import command

    from services.common.db.migrations import alembic_config

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/scratch.db"
        cfg = alembic_config(service, url)
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


# --- tokens --------------------------------------------------------------------------------
@main.group()
def token() -> None:
    """Development tokens (BBI_AUTH_MODE=dev only; real users sign in at Keycloak)."""


@token.command("issue")
@click.option("--role", type=click.Choice(["umkm", "official", "operator", "admin"]),
              required=True)
@click.option("--sub", "subject", required=True, help="subject: the person's account id")
@click.option("--claim", multiple=True, help="extra claim key=value (e.g. agency=KemenKopUKM)")
@click.option("--ttl", type=int, default=3600, show_default=True)
def token_issue(role: str, subject: str, claim: tuple[str, ...], ttl: int) -> None:
    """Print an HS256 development token (BBI_AUTH_MODE=dev with BBI_JWT_SECRET)."""
    from devtools.dev_tokens import NotDevMode, issue_token

    extra = dict(c.split("=", 1) for c in claim)
    try:
        click.echo(issue_token(Settings.from_env("cli"), subject, role, ttl, **extra))
    except NotDevMode as exc:
        raise click.ClickException(str(exc)) from None


# --- the whole system locally -------------------------------------------------------------
@main.command("run")
@click.option("--kafka-port", default=9092, show_default=True)
def run(kafka_port: int) -> None:
    """Run everything locally: Kafka, topics, migrations, every web + worker (Procfile)."""
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{kafka_port}")
    procfile = REPO_ROOT / "Procfile"
    os.execvp(str(Path(sys.executable).parent / "honcho"),
              ["honcho", "start", "-f", str(procfile), "-d", str(REPO_ROOT)])


def _add_service_commands() -> None:
    for name in registry.SERVICES:
        try:
            mod = registry.module(name, "commands")
        except ModuleNotFoundError:
            continue
        for cmd in mod.commands.commands.values():
            main.add_command(cmd)


_add_service_commands()
