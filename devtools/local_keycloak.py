"""A real Keycloak (the identity provider) for local runs and tests, in development mode.

The server is `org.keycloak:keycloak-quarkus-dist`, fetched from Maven Central by
deploy/keycloak/pom.xml into deploy/keycloak/dist (git-ignored), run on Java 21+
(devtools.java) and bound to 127.0.0.1. Realm `bbi` comes from deploy/keycloak/*.json,
imported when a data dir is new. E-mail goes to a local SMTP sink (devtools.smtp_sink).

One shared distribution, one data dir per instance: the data dir is the instance's Keycloak
home (kc.home.dir) with lib/ and themes/ linked to the distribution and its own conf/ and
data/ (H2 database, import/), so a local run and a test session never share state.

Layout of a data dir:
    local-keycloak.json  ports and the bootstrap admin's password (fixed when created)
    keycloak.pid / keycloak.out   the server's pid (process group) and console log
    smtp.pid / mail/     the SMTP sink's pid and the mails it received
    conf/ data/ lib@ themes@ providers/   the Keycloak home
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.java import find_java_home
from devtools.local_kafka import _pid_alive, _tail, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
KEYCLOAK_DIR = REPO_ROOT / "deploy" / "keycloak"
DIST_ROOT = KEYCLOAK_DIR / "dist"
REALM = "bbi"
ADMIN_USER = "admin"
# A bound on a live process that is not ready yet, not a speed check: ~30-70 s is usual, but a
# CI run under load took more than 240 s once and every Keycloak test then failed.
START_TIMEOUT_S = 900.0
_FETCH_STAMP = DIST_ROOT / ".pom.sha256"
TEMPLATE_DIR = REPO_ROOT / "var" / "keycloak-template"
# Small heap, C1-only JIT and the serial collector: a dev server on a shared 2-core machine
# starts faster and stays smaller this way (~430 MB RSS with kc.sh's defaults).
JAVA_OPTS = ("-Xms64m -Xmx512m -XX:MetaspaceSize=96M -XX:MaxMetaspaceSize=256m "
             "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError "
             "-Dfile.encoding=UTF-8 -Djava.security.egd=file:/dev/urandom "
             # jboss-threads resets thread locals through java.lang on Java 24+; without this
             # every executor thread dies after its first task (IllegalAccessError).
             "--add-opens=java.base/java.lang=ALL-UNNAMED")


class KeycloakStartError(RuntimeError):
    """Keycloak did not come up; the message carries the tail of its console log."""


def _pom_hash() -> str:
    return hashlib.sha256((KEYCLOAK_DIR / "pom.xml").read_bytes()).hexdigest()


def dist_dir() -> Path:
    found = sorted(DIST_ROOT.glob("keycloak-*/bin/kc.sh"))
    if not found:
        raise KeycloakStartError(f"no Keycloak in {DIST_ROOT}: run `bbi keycloak fetch`")
    return found[-1].parent.parent


def fetch(force: bool = False) -> Path:
    """Download and unpack the Keycloak distribution with Maven (no-op when up to date)."""
    try:
        if not force and _FETCH_STAMP.read_text().strip() == _pom_hash():
            return dist_dir()
    except OSError:
        pass
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found: install Maven (apt-get install -y maven)")
    subprocess.run([mvn, "-q", "-B", "package"], cwd=KEYCLOAK_DIR, check=True)
    home = dist_dir()
    _FETCH_STAMP.write_text(_pom_hash() + "\n")
    return home


def realm_files() -> list[Path]:
    return sorted(KEYCLOAK_DIR.glob("*.json"))


def _realm_hash() -> str:
    h = hashlib.sha256()
    for f in realm_files():
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def _http(method: str, url: str, token: str = "", data: Any = None, form: dict[str, str]
          | None = None, timeout: float = 60.0) -> tuple[int, Any]:
    # 60 s: the first requests after a start run on a cold JIT, and the machine is shared.
    body, headers = None, {}
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            raw = resp.read()
            status = resp.status
            location = resp.headers.get("Location", "")
    except urllib.error.HTTPError as err:
        raw, status, location = err.read(), err.code, ""
    try:
        return status, json.loads(raw) if raw else {"location": location}
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class LocalKeycloak:
    """A running Keycloak. `process` is None when found through its pid file."""

    port: int
    management_port: int
    smtp_port: int
    data_dir: Path
    pid: int
    admin_password: str = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _pid_alive(self.pid)

    def admin_token(self) -> str:
        status, body = _http("POST", f"{self.base_url}/realms/master/protocol/openid-connect/"
                             "token", form={"grant_type": "password", "client_id": "admin-cli",
                                            "username": ADMIN_USER,
                                            "password": self.admin_password})
        if status != 200:
            raise KeycloakStartError(f"admin sign-in failed: {status} {body}")
        return str(body["access_token"])

    def admin(self, method: str, path: str, data: Any = None) -> tuple[int, Any]:
        """Call the admin REST API: path relative to /admin/realms/bbi."""
        return _http(method, f"{self.base_url}/admin/realms/{REALM}{path}",
                     token=self.admin_token(), data=data)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the process group (Keycloak shuts down cleanly), SIGKILL after timeout."""
        _stop_group(self.pid, timeout)
        _stop_group(_read_pid(self.data_dir / "smtp.pid"), 5.0)
        for name in ("keycloak.pid", "smtp.pid"):
            (self.data_dir / name).unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stop_group(pid: int | None, timeout: float) -> None:
    """SIGTERM to the whole process group, SIGKILL after `timeout`. The group is done only
    when every member is gone: kc.sh (the leader) exits on SIGTERM before its java child,
    and a stop that watched the leader alone left Keycloak running."""
    if pid is None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:  # reap the leader if it is our child, so it does not linger as a zombie
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _group_alive(pid):
                return
            time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ours(pid: int, data_dir: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return f"-Dkc.home.dir={data_dir}" in cmd


def running(data_dir: Path) -> int | None:
    """Pid of the Keycloak running on data_dir (its pid file, checked), else None."""
    data_dir = Path(data_dir).resolve()
    pid = _read_pid(data_dir / "keycloak.pid")
    return pid if pid is not None and _pid_alive(pid) and _is_ours(pid, data_dir) else None


def _prepare_home(data_dir: Path, dist: Path, fresh: bool) -> None:
    for name in ("lib", "themes"):
        link = data_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(dist / name)
    (data_dir / "providers").mkdir(exist_ok=True)
    shutil.copytree(dist / "conf", data_dir / "conf", dirs_exist_ok=True)
    imports = data_dir / "data" / "import"
    shutil.rmtree(imports, ignore_errors=True)
    imports.mkdir(parents=True)
    if fresh:  # an existing realm is never re-imported (that would reset users who signed up)
        for f in realm_files():
            shutil.copy(f, imports / f.name)


def _start_smtp(data_dir: Path, port: int) -> None:
    out = (data_dir / "smtp.out").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "devtools.smtp_sink", "--port", str(port),
                             "--dir", str(data_dir / "mail")], cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    (data_dir / "smtp.pid").write_text(f"{proc.pid}\n")


def ensure_template() -> Path:
    """A stopped instance whose database already holds the schema and realm `bbi` (built
    once per Keycloak version and realm files, under a lock): a new data dir starts from a
    copy of it, which saves the first start's ~40 s of schema creation and realm import."""
    import fcntl

    TEMPLATE_DIR.parent.mkdir(parents=True, exist_ok=True)
    want = {"dist": dist_dir().name, "realm_sha256": _realm_hash()}
    with (TEMPLATE_DIR.parent / "keycloak-template.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be building it
        try:
            have = json.loads((TEMPLATE_DIR / "template.json").read_text())
        except (OSError, ValueError):
            have = {}
        if have != want:
            shutil.rmtree(TEMPLATE_DIR, ignore_errors=True)
            build = TEMPLATE_DIR.with_name(TEMPLATE_DIR.name + ".building")
            shutil.rmtree(build, ignore_errors=True)
            start(port=free_port(), data_dir=build, from_template=False).stop()
            for name in ("mail", "data/import"):
                shutil.rmtree(build / name, ignore_errors=True)
            for name in ("keycloak.out", "smtp.out"):
                (build / name).unlink(missing_ok=True)
            (build / "template.json").write_text(json.dumps(want) + "\n")
            build.rename(TEMPLATE_DIR)
    return TEMPLATE_DIR


def start(port: int = 8080, data_dir: Path = REPO_ROOT / "var" / "keycloak", *,
          timeout: float = START_TIMEOUT_S, from_template: bool = True) -> LocalKeycloak:
    """Start Keycloak (start-dev) on 127.0.0.1:port with its home in data_dir; return once
    it is ready and realm `bbi` answers. A new data dir starts from the template (realm
    already imported); one used before keeps its users and keys."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    dist = fetch()
    if (pid := running(data_dir)) is not None:
        raise KeycloakStartError(f"Keycloak (pid {pid}) already runs on {data_dir}; "
                                 "stop it first (bbi keycloak stop)")
    state_file = data_dir / "local-keycloak.json"
    fresh = not (data_dir / "data" / "h2").exists()
    if fresh and from_template:
        template = ensure_template()
        shutil.copytree(template / "data" / "h2", data_dir / "data" / "h2")
        shutil.copy(template / "local-keycloak.json", state_file)
        fresh = False
    state: dict[str, Any] = {} if fresh else json.loads(state_file.read_text())
    if fresh:
        state = {"admin_password": secrets.token_urlsafe(18), "realm_sha256": _realm_hash()}
    elif state.get("realm_sha256") != _realm_hash():
        print(f"note: deploy/keycloak/*.json changed since {data_dir} was created; realm "
              f"'{REALM}' keeps its old settings until you `bbi keycloak stop --reset`",
              file=sys.stderr)
    state.update(port=port, management_port=free_port(), smtp_port=free_port())
    state_file.write_text(json.dumps(state, indent=1) + "\n")
    state_file.chmod(0o600)
    _prepare_home(data_dir, dist, fresh)
    _start_smtp(data_dir, state["smtp_port"])

    env = dict(os.environ, JAVA_HOME=str(find_java_home(21)), JAVA_OPTS=JAVA_OPTS,
               KC_BOOTSTRAP_ADMIN_USERNAME=ADMIN_USER,
               KC_BOOTSTRAP_ADMIN_PASSWORD=state["admin_password"])
    cmd = ["sh", str(dist / "bin" / "kc.sh"), f"-Dkc.home.dir={data_dir}",
           f"-Djboss.server.config.dir={data_dir / 'conf'}", "start-dev",
           "--http-host=127.0.0.1", f"--http-port={port}",
           f"--hostname=http://127.0.0.1:{port}",  # one issuer, whatever host a browser used
           "--health-enabled=true", f"--http-management-port={state['management_port']}",
           "--import-realm"]
    out_path = data_dir / "keycloak.out"
    with out_path.open("ab") as out:
        out.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} port {port} ---\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, cwd=data_dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    (data_dir / "keycloak.pid").write_text(f"{proc.pid}\n")
    kc = LocalKeycloak(port, state["management_port"], state["smtp_port"], data_dir, proc.pid,
                       state["admin_password"], proc)
    deadline = time.monotonic() + timeout
    while not _ready(kc):
        if proc.poll() is not None or time.monotonic() > deadline:
            kc.stop(timeout=10)
            why = "exited" if proc.returncode is not None else f"not ready in {timeout:.0f}s"
            raise KeycloakStartError(f"Keycloak {why}; {out_path}:\n{_tail(out_path, 40)}")
        time.sleep(0.5)
    try:
        _configure(kc)
    except Exception:
        kc.stop(timeout=10)
        raise
    return kc


def _ready(kc: LocalKeycloak) -> bool:
    try:
        status, _ = _http("GET", f"http://127.0.0.1:{kc.management_port}/health/ready",
                          timeout=2)
        if status != 200:
            return False
        status, _ = _http("GET", f"{kc.issuer}/.well-known/openid-configuration", timeout=5)
        return status == 200
    except (OSError, urllib.error.URLError):
        return False


def _configure(kc: LocalKeycloak) -> None:
    """Settings that depend on this instance: the SMTP sink's port."""
    status, body = kc.admin("GET", "")
    smtp = dict(body.get("smtpServer") or {}, host="127.0.0.1", port=str(kc.smtp_port))
    status, body = kc.admin("PUT", "", {"smtpServer": smtp})
    if status not in (200, 204):
        raise KeycloakStartError(f"could not point realm {REALM} at the SMTP sink: {body}")


def stop_from_pidfile(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the Keycloak (and its SMTP sink) of data_dir; False when none was running."""
    data_dir = Path(data_dir).resolve()
    pid = running(data_dir)
    _stop_group(pid, timeout)
    _stop_group(_read_pid(data_dir / "smtp.pid"), 5.0)
    for name in ("keycloak.pid", "smtp.pid"):
        (data_dir / name).unlink(missing_ok=True)
    return pid is not None


def password_token(token_endpoint: str, username: str, password: str,
                   client_id: str = "bbi-dev") -> dict[str, Any]:
    """Tokens of a dev-realm user from the token endpoint (password grant, dev client only)."""
    status, body = _http("POST", token_endpoint, form={
        "grant_type": "password", "client_id": client_id, "username": username,
        "password": password, "scope": "openid"})
    if status != 200:
        raise RuntimeError(f"token endpoint refused {username}: {status} {body}")
    return body  # type: ignore[no-any-return]
