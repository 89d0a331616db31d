"""Events, contracts, the outbox and its relay, the consumer runner, the unit of work,
the worker, Kafka clients."""
