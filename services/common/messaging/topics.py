"""Topic creation from the contracts: what the migration step of a deployment without an
operator runs (`python -m services.common.messaging.topics`), and what the local tools call."""
from __future__ import annotations

from collections.abc import Mapping

from services.common.config import Settings
from services.common.messaging.contracts import TOPIC_CONFIGS


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, Mapping[str, str]],
    partitions: int,
    replication: int,
    *,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet, each with its configs; return those created.

    Existing topics are left alone (their partition count and configs are not changed).
    Returns only after every topic has a leader for each partition, so a producer can use
    them at once.
    """
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError, for_code

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="bbi-ensure-topics",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        existing = set(admin.list_topics())
        missing = {name: cfg for name, cfg in topics.items() if name not in existing}
        if missing:
            result = admin.create_topics(
                {
                    name: {
                        "num_partitions": partitions,
                        "replication_factor": replication,
                        "configs": {k: str(v) for k, v in cfg.items()},
                    }
                    for name, cfg in missing.items()
                },
                timeout_ms=int(timeout_s * 1000),
                raise_errors=False,  # judged per topic below, so one existing topic is no error
            )
            for t in result["topics"]:
                err = for_code(t["error_code"])
                if t["error_code"] != 0 and err is not TopicAlreadyExistsError:
                    raise err(f"creating topic {t['name']}: {t.get('error_message')}")
        admin.wait_for_topics(list(topics), timeout_ms=int(timeout_s * 1000))
        return sorted(missing)
    finally:
        admin.close()


def ensure_contract_topics(s: Settings, partitions: int | None = None,
                           replication: int | None = None) -> list[str]:
    """Every domain and dead-letter topic of the contracts, with the settings' prefix."""
    replication = replication or s.topic_replication
    # DESIGN §3: with 3 replicas an acks=all write needs 2 of them in sync, so one node may be
    # lost (or rolled) without refusing writes or losing an acked one.
    min_isr = {"min.insync.replicas": "2" if replication >= 3 else "1"}
    return ensure_topics(
        s.kafka_bootstrap_servers,
        {s.topic_prefix + t: {**cfg, **min_isr} for t, cfg in TOPIC_CONFIGS.items()},
        partitions=partitions or s.topic_partitions, replication=replication)


def main() -> int:
    created = ensure_contract_topics(Settings.from_env("topics"))
    print(f"created: {', '.join(created) or 'none (all present)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
