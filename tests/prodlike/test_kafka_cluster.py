"""The Kafka of production on loopback: three KRaft nodes from the Maven jars, the topics as
`bbi topics ensure` creates them with the ConfigMap's BBI_TOPIC_REPLICATION=3 (replication 3,
min.insync.replicas 2), and the relay's producer with acks=all, which keeps writing with one
node down."""
from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from devtools import local_kafka_cluster
from devtools.cli import main as bbi
from services.common.config import Settings
from services.common.messaging import contracts
from services.common.messaging.kafka_clients import make_producer

pytestmark = pytest.mark.kafka


def _topic_settings(bootstrap: str, topic: str) -> tuple[set[int], str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        [desc] = admin.describe_topics([topic])
        replicas = {len(p["replica_nodes"]) for p in desc["partitions"]}
        res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        # {resource type: {name: {key: {config data}}}}; only the non-default keys.
        [configs] = [by_name[topic] for by_name in res.values()]
        entry = configs["min.insync.replicas"]
        return replicas, str(entry.get("value") if isinstance(entry, dict) else entry)
    finally:
        admin.close()


def test_topics_replicated_3_min_isr_2_and_acks_all_survive_one_node(
        whole_cluster: local_kafka_cluster.LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"k{uuid.uuid4().hex[:6]}."
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", whole_cluster.bootstrap)
    monkeypatch.setenv("BBI_TOPIC_REPLICATION", "3")  # as in deploy/k8s/base/configmap.yaml
    monkeypatch.setenv("BBI_TOPIC_PREFIX", prefix)
    res = CliRunner().invoke(bbi, ["topics", "ensure", "--partitions", "3"])
    assert res.exit_code == 0, res.output
    for topic in contracts.TOPIC_CONFIGS:
        assert _topic_settings(whole_cluster.bootstrap, prefix + topic) == ({3}, "2"), topic
    assert sorted(whole_cluster.alive()) == [1, 2, 3]

    settings = Settings.from_env("cluster-test", database_url="sqlite://",
                                 kafka_bootstrap_servers=whole_cluster.bootstrap)
    topic = prefix + contracts.TOPIC_UMKM
    victim = local_kafka_cluster.leaders(whole_cluster.bootstrap, topic)[0]
    whole_cluster.kill_node(victim)
    producer = make_producer(settings)
    try:
        assert producer.config["acks"] in ("all", -1)
        futures = [producer.send(topic, key=f"k{i}".encode(), value=b"{}") for i in range(30)]
        metas = [f.get(timeout=60) for f in futures]  # acked by 2 in-sync replicas
    finally:
        producer.close(timeout=5)
    assert {m.partition for m in metas} == {0, 1, 2}
    assert local_kafka_cluster.leaders(whole_cluster.bootstrap, topic)[0] != victim
