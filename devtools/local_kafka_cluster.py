"""A real 3-node Kafka 4.1 KRaft cluster on loopback: the production topology of deploy/k8s
(three combined broker+controller nodes, replication 3, min.insync.replicas 2), from the same
Maven jars as the single local broker (local_kafka.py), for `bbi kafka start --nodes 3`, the
prodlike stack and its fault tests.

Layout of a cluster dir:
    local-cluster.json  cluster id and every node's ports, fixed at format time
    node-<id>/          one node's data dir, laid out as local_kafka describes
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import local_kafka as lk

TEMPLATE = lk.KAFKA_DIR / "cluster-node.properties.template"
NODE_HEAP = "384m"  # three JVMs beside the services on two cores
STATE = "local-cluster.json"


@dataclass
class LocalCluster:
    """Three running nodes; `nodes[id]` is None while a node is down."""

    data_dir: Path
    cluster_id: str
    ports: dict[int, tuple[int, int]]  # node id -> (broker port, controller port)
    nodes: dict[int, lk.LocalBroker | None] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p, _ in self.ports.values())

    def node_dir(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}"

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, like a crash (its logs recover from disk on the next start)."""
        node = self.nodes.get(node_id)
        if node is not None:
            node.kill()
        self.nodes[node_id] = None

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        node = self.nodes.get(node_id)
        if node is not None:
            node.stop(timeout)
        self.nodes[node_id] = None

    def start_node(self, node_id: int, timeout: float = lk.START_TIMEOUT_S) -> lk.LocalBroker:
        """(Re)start one node on its ports and data; return once it serves as a broker."""
        node = _launch(self.node_dir(node_id), self.ports[node_id][0])
        self.nodes[node_id] = node
        _wait(lambda: node.is_running() and lk._port_open(node.port)
              and _registered(self.bootstrap) >= {node_id}, timeout, node)
        return node

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node at once (one by one, the last ones would wait for a controller
        majority that is already gone), then SIGKILL whatever outlives `timeout`."""
        running = [n for n in self.nodes.values() if n is not None and n.is_running()]
        for n in running:
            n._signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for n in running:
            if not n._wait_exit(max(0.1, deadline - time.monotonic())):
                n.kill()
            n._forget_pid()
        self.nodes = dict.fromkeys(self.ports)

    def alive(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n is not None and n.is_running()]


def _render(node_dir: Path, node_id: int, ports: dict[int, tuple[int, int]]) -> Path:
    voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in sorted(ports.items()))
    text = TEMPLATE.read_text().format(node_id=node_id, port=ports[node_id][0],
                                       controller_port=ports[node_id][1], voters=voters,
                                       log_dirs=node_dir / "kraft")
    out = node_dir / "server.properties"
    out.write_text(text)
    return out


def _format(node_dir: Path, config: Path, cluster_id: str) -> None:
    cmd = lk._jvm_command(node_dir, "kafka.tools.StorageTool", NODE_HEAP)
    cmd.insert(1, "-XX:TieredStopAtLevel=1")  # a one-shot tool: C1 only starts faster
    # Static voters in the config: no --standalone / --initial-controllers.
    cmd += ["format", "--config", str(config), "--cluster-id", cluster_id]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise lk.BrokerStartError(f"kafka-storage format of {node_dir} failed "
                                  f"({res.returncode}):\n{res.stdout}\n{res.stderr}")


def _launch(node_dir: Path, port: int) -> lk.LocalBroker:
    if (pid := lk.running_pid(node_dir)) is not None:
        raise lk.BrokerStartError(f"node on {node_dir} already runs (pid {pid})")
    config = node_dir / "server.properties"
    with (node_dir / "broker.out").open("ab") as out:
        out.write(f"\n--- start {time.strftime('%Y-%m-%d %H:%M:%S')} port {port} ---\n".encode())
        out.flush()
        cmd = lk._jvm_command(node_dir, "kafka.Kafka", NODE_HEAP)
        # Three JVMs on two shared cores: C1 only and the serial collector start a node in
        # about half the CPU time, and test traffic never needs C2's peak throughput.
        cmd[1:1] = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
        proc = subprocess.Popen(cmd + [str(config)], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=node_dir,
                                start_new_session=True)  # own group: a stray Ctrl-C spares it
    (node_dir / "broker.pid").write_text(f"{proc.pid}\n")
    return lk.LocalBroker(port, 0, node_dir, proc.pid, proc)


def _registered(bootstrap: str) -> set[int]:
    """Node ids the cluster reports as live brokers (empty when nobody answers)."""
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bbi-cluster-probe",
                                 bootstrap_timeout_ms=3000, request_timeout_ms=5000)
    except Exception:  # noqa: BLE001 - not up yet
        return set()
    try:
        return {int(b["broker_id"]) for b in admin.describe_cluster().get("brokers", [])
                if not b.get("is_fenced")}
    except Exception:  # noqa: BLE001
        return set()
    finally:
        admin.close()


def _wait(ready: Any, timeout: float, node: lk.LocalBroker) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if not node.is_running():
            raise lk.BrokerStartError(f"node {node.data_dir} exited during start:\n"
                                      f"{lk._tail(node.data_dir / 'broker.out')}\n"
                                      f"{lk._tail(node.data_dir / 'server.log', 20)}")
        if time.monotonic() > deadline:
            raise lk.BrokerStartError(f"node {node.data_dir} not serving after {timeout:.0f}s:"
                                      f"\n{lk._tail(node.data_dir / 'server.log')}")
        time.sleep(0.5)


def start(data_dir: Path, nodes: int = 3, base_port: int | None = None,
          timeout: float = 120.0) -> LocalCluster:
    """Start (formatting on first use) an n-node cluster; return once every node is a live
    broker. A formatted cluster dir restarts on its recorded ports with its data."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lk.fetch()
    state_path = data_dir / STATE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        ports = {int(k): (int(v[0]), int(v[1])) for k, v in state["ports"].items()}
        cluster_id = state["cluster_id"]
        if len(ports) != nodes:
            raise ValueError(f"{data_dir} holds a {len(ports)}-node cluster, not {nodes}")
    else:
        cluster_id = lk._random_cluster_id()
        used: set[int] = set()
        ports = {}
        for i in range(1, nodes + 1):
            if base_port is not None:
                ports[i] = (base_port + i - 1, base_port + 100 + i - 1)
                continue
            pair: list[int] = []
            while len(pair) < 2:
                p = lk.free_port()
                if p not in used:
                    used.add(p)
                    pair.append(p)
            ports[i] = (pair[0], pair[1])
        for i in ports:
            node_dir = data_dir / f"node-{i}"
            shutil.rmtree(node_dir, ignore_errors=True)
            node_dir.mkdir(parents=True)
            _format(node_dir, _render(node_dir, i, ports), cluster_id)
        state_path.write_text(json.dumps({"cluster_id": cluster_id, "ports": {
            str(i): list(p) for i, p in ports.items()}}) + "\n")
    cluster = LocalCluster(data_dir, cluster_id, ports)
    try:
        for i in ports:  # all at once: the controllers need a majority to elect a leader
            _render(cluster.node_dir(i), i, ports)
            cluster.nodes[i] = _launch(cluster.node_dir(i), ports[i][0])
        first = next(n for n in cluster.nodes.values() if n is not None)
        _wait(lambda: _registered(cluster.bootstrap) >= set(ports), timeout, first)
    except BaseException:
        cluster.stop(timeout=10)
        raise
    return cluster


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop every node of the cluster in data_dir (from another process); False if none ran."""
    data_dir = Path(data_dir).resolve()
    nodes = {}
    for node_dir in sorted(data_dir.glob("node-*")):
        if (pid := lk.running_pid(node_dir)) is not None:
            nodes[int(node_dir.name.removeprefix("node-"))] = lk.LocalBroker(0, 0, node_dir, pid)
    LocalCluster(data_dir, "", dict.fromkeys(nodes, (0, 0)), dict(nodes)).stop(timeout)
    return bool(nodes)


def isr(bootstrap: str, topic: str) -> dict[int, list[int]]:
    """partition -> node ids of its in-sync replicas."""
    return {p: i for p, (_, i) in _partitions(bootstrap, topic).items()}


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> node id of its current leader (-1 while none)."""
    return {p: leader for p, (leader, _) in _partitions(bootstrap, topic).items()}


def _partitions(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bbi-cluster-leaders",
                             request_timeout_ms=10_000)
    try:
        [desc] = admin.describe_topics([topic])
        return {int(p["partition_index"]): (int(p["leader_id"]), list(p["isr_nodes"]))
                for p in desc["partitions"]}
    finally:
        admin.close()
