"""A real single-node Kafka 4.1 broker (KRaft) for local runs and integration tests.

The broker is the Apache Kafka jar set fetched from Maven Central by deploy/kafka/pom.xml
(there is no Docker and no Kafka tarball download on our machines), run with plain `java`.

Layout of a data dir (everything the broker owns, so `rm -rf` resets it):
    server.properties   rendered from deploy/kafka/server.properties.template on each start
    local-broker.json   cluster id and controller port, fixed at format time (see below)
    kraft/              Kafka's log.dirs (metadata log + partitions)
    broker.pid          pid of the running JVM
    broker.out          JVM stdout/stderr (WARN+ log lines, crashes)
    server.log          INFO log (log4j2, deploy/kafka/log4j2.properties)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
LIB_DIR = KAFKA_DIR / "lib"
TEMPLATE = KAFKA_DIR / "server.properties.template"
LOG4J2_CONFIG = KAFKA_DIR / "log4j2.properties"
# Written after a successful fetch: the pom's hash, so an edited pom triggers a re-fetch.
_FETCH_STAMP = LIB_DIR / ".pom.sha256"

# Two cores and several service processes beside it: a small heap is plenty for tests.
DEFAULT_HEAP = "512m"
START_TIMEOUT_S = 300.0  # a bound on a live broker not ready yet; 60 s ran out at a load of ~35

log = logging.getLogger(__name__)


class BrokerStartError(RuntimeError):
    """The broker did not come up; the message carries the tail of its logs."""


def _pom_hash() -> str:
    return hashlib.sha256((KAFKA_DIR / "pom.xml").read_bytes()).hexdigest()


def is_fetched() -> bool:
    """True when lib/ holds the jars of the current pom.xml."""
    try:
        return _FETCH_STAMP.read_text().strip() == _pom_hash()
    except OSError:
        return False


def fetch(force: bool = False) -> Path:
    """Download the broker jars into deploy/kafka/lib with Maven (no-op when up to date)."""
    if not force and is_fetched():
        return LIB_DIR
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found: install Maven (apt-get install -y maven) to fetch Kafka")
    # The pom empties lib/ first (maven-clean-plugin), so stale jars never linger.
    subprocess.run([mvn, "-q", "-B", "package"], cwd=KAFKA_DIR, check=True)
    if not any(LIB_DIR.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"mvn package ran but {LIB_DIR} has no kafka_2.13 jar")
    _FETCH_STAMP.write_text(_pom_hash() + "\n")
    return LIB_DIR


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (racy, but fine on one machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError(
            "java not found: install a JRE >= 17 (apt-get install -y default-jre-headless)"
        )
    return java


def _jvm_command(data_dir: Path, main_class: str, heap: str) -> list[str]:
    return [
        _java(),
        f"-Xmx{heap}",
        "-Xms64m",
        # A broker that ran out of heap is useless; die so the caller sees it in the log.
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={data_dir}",
        "-cp",
        str(LIB_DIR / "*"),  # a JVM classpath wildcard, expanded by java, not a shell glob
        main_class,
    ]


def _random_cluster_id() -> str:
    # Same shape as Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe base64
    # without padding; Kafka avoids a leading '-' because it reads like a CLI flag.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"<{path} not readable>"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(pid, 0).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    """Guard against pid reuse: the process must be kafka.Kafka on this data dir's config."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in cmdline]
    return "kafka.Kafka" in args and str(data_dir / "server.properties") in args


def running_pid(data_dir: Path) -> int | None:
    """Pid of the broker running on data_dir according to its pid file, else None."""
    data_dir = Path(data_dir).resolve()
    try:
        pid = int((data_dir / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) and _is_our_broker(pid, data_dir) else None


def _broker_answers(bootstrap: str) -> bool:
    """True when a kafka-python admin client bootstraps and sees a registered broker."""
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="bbi-local-kafka-probe",
            bootstrap_timeout_ms=3000,
            request_timeout_ms=5000,
        )
    except Exception:  # NoBrokersAvailable, KafkaTimeoutError, connection errors
        return False
    try:
        return bool(admin.describe_cluster().get("brokers"))
    except Exception:
        return False
    finally:
        admin.close()


@dataclass
class LocalBroker:
    """A running broker. `process` is None when it was found through its pid file."""

    port: int
    controller_port: int
    data_dir: Path
    pid: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _pid_alive(self.pid)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None:
                try:
                    self.process.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not _pid_alive(self.pid):
                return True
            time.sleep(0.1)
        return not self.is_running()

    def _signal(self, sig: signal.Signals) -> None:
        # The JVM leads its own process group (start_new_session), so signal the group.
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful shutdown (SIGTERM: Kafka flushes and closes its logs), SIGKILL after timeout."""
        if self.is_running():
            self._signal(signal.SIGTERM)
            if not self._wait_exit(timeout):
                log.warning("kafka broker %s ignored SIGTERM for %.0fs; killing", self.pid, timeout)
                self.kill()
                return
        self._forget_pid()

    def kill(self) -> None:
        """SIGKILL, like a crash: the next start recovers the logs from disk."""
        if self.is_running():
            self._signal(signal.SIGKILL)
            self._wait_exit(10.0)
        self._forget_pid()

    def _forget_pid(self) -> None:
        pidfile = self.data_dir / "broker.pid"
        try:
            if int(pidfile.read_text().strip()) == self.pid:
                pidfile.unlink()
        except (OSError, ValueError):
            pass


def _load_state(data_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((data_dir / "local-broker.json").read_text())
        return state if isinstance(state, dict) else None
    except (OSError, ValueError):
        return None


def render_config(data_dir: Path, port: int, controller_port: int) -> Path:
    """Write data_dir/server.properties from the template."""
    text = TEMPLATE.read_text().format(
        port=port, controller_port=controller_port, log_dirs=data_dir / "kraft"
    )
    out = data_dir / "server.properties"
    out.write_text(text)
    return out


def _format_storage(data_dir: Path, config: Path, cluster_id: str, heap: str) -> None:
    # 4.x: kafka.tools.StorageTool (kafka-storage.sh). --standalone makes this node the whole
    # dynamic controller quorum; the voter's endpoint (our controller port) is recorded in the
    # metadata log, which is why the controller port is pinned in local-broker.json.
    cmd = _jvm_command(data_dir, "kafka.tools.StorageTool", heap)
    # A one-shot tool: C1-only JIT saves ~0.5 s of the 2 s it takes on 2 cores.
    cmd.insert(1, "-XX:TieredStopAtLevel=1")
    cmd += [
        "format",
        "--config",
        str(config),
        "--cluster-id",
        cluster_id,
        "--standalone",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise BrokerStartError(
            f"kafka-storage format failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        )


def start(
    port: int = 9092,
    data_dir: Path = REPO_ROOT / "var" / "kafka",
    controller_port: int | None = None,
    *,
    heap: str = DEFAULT_HEAP,
    timeout: float = START_TIMEOUT_S,
) -> LocalBroker:
    """Start a broker on 127.0.0.1:port with its data in data_dir; return once it answers.

    A data dir that was formatted before (e.g. the broker was killed) is reused as is: same
    cluster id, same controller port, topics and records intact.
    """
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    fetch()  # no-op unless lib/ is missing or was fetched by an older pom.xml
    if (pid := running_pid(data_dir)) is not None:
        raise BrokerStartError(
            f"a broker (pid {pid}) already runs on {data_dir}; stop it first "
            "(local_kafka.stop_from_pidfile)"
        )

    state = _load_state(data_dir)
    formatted = (data_dir / "kraft" / "meta.properties").exists()
    if formatted and state is not None:
        pinned = int(state["controller_port"])
        if controller_port is not None and controller_port != pinned:
            raise ValueError(
                f"{data_dir} was formatted with controller port {pinned}, not {controller_port}"
            )
        controller_port = pinned
    elif formatted:
        raise BrokerStartError(f"{data_dir}/kraft is formatted but local-broker.json is missing")
    if controller_port is None:
        controller_port = free_port()
        while controller_port == port:
            controller_port = free_port()

    config = render_config(data_dir, port, controller_port)
    if not formatted:
        cluster_id = _random_cluster_id()
        _format_storage(data_dir, config, cluster_id, heap)
        (data_dir / "local-broker.json").write_text(
            json.dumps({"cluster_id": cluster_id, "controller_port": controller_port}) + "\n"
        )

    out_path = data_dir / "broker.out"
    with out_path.open("ab") as out:
        out.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} port {port} ---\n".encode())
        out.flush()
        proc = subprocess.Popen(
            _jvm_command(data_dir, "kafka.Kafka", heap) + [str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            # Own session/process group: Ctrl-C in a terminal or a dying pytest does not take
            # the broker down half-way, and stop() can signal the whole group.
            start_new_session=True,
        )
    (data_dir / "broker.pid").write_text(f"{proc.pid}\n")
    broker = LocalBroker(port, controller_port, data_dir, proc.pid, proc)

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            broker._forget_pid()
            raise BrokerStartError(
                f"kafka broker exited with {proc.returncode} during start; "
                f"{out_path}:\n{_tail(out_path)}\n{data_dir / 'server.log'}:\n"
                f"{_tail(data_dir / 'server.log', 20)}"
            )
        if _port_open(port) and _broker_answers(broker.bootstrap):
            return broker
        if time.monotonic() > deadline:
            broker.kill()
            raise BrokerStartError(
                f"kafka broker did not answer on {broker.bootstrap} within {timeout:.0f}s; "
                f"{data_dir / 'server.log'}:\n{_tail(data_dir / 'server.log')}\n"
                f"{out_path}:\n{_tail(out_path, 20)}"
            )
        time.sleep(0.25)


def _port_open(port: int) -> bool:
    # Cheap pre-check so the admin client is not spun up (and logging errors) every 250 ms.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_from_pidfile(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the broker recorded in data_dir/broker.pid (e.g. from another process).

    Returns False when no broker was running there.
    """
    data_dir = Path(data_dir).resolve()
    pid = running_pid(data_dir)
    if pid is None:
        (data_dir / "broker.pid").unlink(missing_ok=True)
        return False
    state = _load_state(data_dir) or {}
    LocalBroker(0, int(state.get("controller_port", 0)), data_dir, pid).stop(timeout)
    return True

