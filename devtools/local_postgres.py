"""A throwaway PostgreSQL cluster for local runs and integration tests.

Uses Debian's server binaries (/usr/lib/postgresql/<major>/bin, package `postgresql`) through
initdb and pg_ctl; nothing is installed or configured system-wide, and the Debian-managed
cluster on 5432 is left alone. The cluster listens on 127.0.0.1 only, with no Unix socket
(so it never needs /var/run/postgresql) and trust authentication.

initdb and postgres refuse to run as root. As root (our CI and dev machines) the cluster is
run as the `postgres` system user via runuser; its data dir is chowned to that user, so every
directory above it must be searchable by `postgres` (`PostgresPathError` says so otherwise).

Layout of a data dir:  pgdata/ (the cluster)  postgres.log  (server log)
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

SERVICE_USER = "postgres"  # the system user that owns the cluster when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates (-U)


class PostgresStartError(RuntimeError):
    """The cluster could not be initialised or started; carries the log tail."""


class PostgresPathError(PostgresStartError):
    """As root, the data dir is not reachable by the `postgres` user (e.g. under /root)."""


def find_bin_dir() -> Path:
    """The bin dir of the newest PostgreSQL under /usr/lib/postgresql (or $PG_BIN_DIR)."""
    if env := os.environ.get("PG_BIN_DIR"):
        return Path(env)
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if not candidates:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        raise PostgresStartError(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: "
            "apt-get install -y postgresql"
        )

    def major(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    return max(candidates, key=major)


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool, as the `postgres` user when we are root."""
    if _as_root():
        args = ["runuser", "-u", SERVICE_USER, "--", *args]
    # cwd must be readable by that user too: some tools resolve paths against it.
    res = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise PostgresStartError(
            f"{' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )
    return res


def _prepare_dir(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if not _as_root():
        return
    try:
        pw = pwd.getpwnam(SERVICE_USER)
    except KeyError as exc:
        raise PostgresStartError(
            f"running as root needs the '{SERVICE_USER}' system user: apt-get install -y postgresql"
        ) from exc
    os.chown(data_dir, pw.pw_uid, pw.pw_gid)
    probe = subprocess.run(
        [
            "runuser",
            "-u",
            SERVICE_USER,
            "--",
            "test",
            "-w",
            str(data_dir),
            "-a",
            "-x",
            str(data_dir),
        ]
    )
    if probe.returncode != 0:
        raise PostgresPathError(
            f"{data_dir} is not reachable by the '{SERVICE_USER}' user (a parent directory is "
            "not searchable, e.g. /root); use a data dir under /tmp or /var/tmp"
        )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} not readable>"


@dataclass
class LocalPostgres:
    """A running cluster. URLs use psycopg 3 and the trusted `postgres` superuser."""

    port: int
    data_dir: Path
    bin_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}"

    def url(self, dbname: str) -> str:
        return f"{self.base_url}/{dbname}"

    def create_database(self, name: str) -> str:
        return create_database(self.base_url, name)

    def is_running(self) -> bool:
        res = _run(
            [str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)],
            cwd=self.data_dir,
            check=False,
        )
        return res.returncode == 0

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """pg_ctl stop (fast: roll back open transactions, disconnect, checkpoint)."""
        if not self.pgdata.exists() or not self.is_running():
            return
        _run(
            [
                str(self.bin_dir / "pg_ctl"),
                "stop",
                "-D",
                str(self.pgdata),
                "-m",
                mode,
                "-w",
                "-t",
                str(int(timeout)),
            ],
            cwd=self.data_dir,
        )


def create_database(base_url: str, name: str) -> str:
    """Create database `name` if missing on the server of base_url; return its URL.

    Works on any server we may talk to (ours, or one given by BBI_TEST_POSTGRES).
    """
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"unsafe database name: {name!r}")
    url = make_url(base_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    # CREATE DATABASE cannot run inside a transaction block.
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another process: fine
    return url.set(database=name).render_as_string(hide_password=False)


def start(
    port: int,
    data_dir: Path,
    databases: tuple[str, ...] | list[str] = (),
    *,
    fsync: bool = False,
    timeout: float = 60.0,
) -> LocalPostgres:
    """Initialise (once) and start a cluster on 127.0.0.1:port; create `databases`.

    fsync is off by default: the cluster is throwaway, and durability costs seconds per test
    run. An already-initialised data dir is reused; an already-running one is returned as is.
    """
    data_dir = Path(data_dir).resolve()
    bin_dir = find_bin_dir()
    _prepare_dir(data_dir)
    pg = LocalPostgres(port, data_dir, bin_dir)

    if not (pg.pgdata / "PG_VERSION").exists():
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(pg.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=data_dir,
        )

    if pg.is_running():
        running_port = _running_port(pg.pgdata)
        if running_port != port:
            raise PostgresStartError(
                f"a cluster already runs on {pg.pgdata} on port {running_port}, not {port}"
            )
    else:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "",
            "fsync": "on" if fsync else "off",
            "synchronous_commit": "on" if fsync else "off",
            "full_page_writes": "on" if fsync else "off",
            # Four services, each with a web + worker pool, plus tests: room for them all.
            "max_connections": "200",
        }
        opts = " ".join(f"-c {k}={v}" if v else f"-c {k}=''" for k, v in settings.items())
        log_file = data_dir / "postgres.log"
        res = _run(
            [
                str(bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(pg.pgdata),
                "-l",
                str(log_file),
                "-o",
                opts,
                "-w",
                "-t",
                str(int(timeout)),
            ],
            cwd=data_dir,
            check=False,
        )
        if res.returncode != 0:
            raise PostgresStartError(
                f"pg_ctl start failed ({res.returncode}): {res.stdout}{res.stderr}\n"
                f"{log_file}:\n{_tail(log_file)}"
            )

    _wait_accepting(pg, timeout)
    for name in databases:
        pg.create_database(name)
    return pg


def _running_port(pgdata: Path) -> int | None:
    # postmaster.pid line 4 is the port (documented in PostgreSQL's pidfile.h).
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def _wait_accepting(pg: LocalPostgres, timeout: float) -> None:
    """pg_ctl -w already waited; this also covers a cluster that was found already running."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=pg.port, user=SUPERUSER, dbname="postgres", connect_timeout=3
            ):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"postgres on 127.0.0.1:{pg.port} not accepting connections: {exc}\n"
                    f"{_tail(pg.data_dir / 'postgres.log')}"
                ) from exc
            time.sleep(0.2)


def stop(data_dir: Path, mode: str = "fast") -> None:
    """Stop the cluster in data_dir if it runs (from any process)."""
    data_dir = Path(data_dir).resolve()
    LocalPostgres(_running_port(data_dir / "pgdata") or 0, data_dir, find_bin_dir()).stop(mode)
