"""Gunicorn settings shared by every service's web process (started by deploy/bin/web).

gthread workers, never gevent: DESIGN §8 (a Kafka client's threads and monkeypatching do
not mix; web processes hold no Kafka client, but the image's worker entry points do)."""

from __future__ import annotations

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM -> finish in-flight requests within this many seconds (k8s grace period is longer).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# No max_requests: every recycled worker leaves multiprocess metric files that slow scrapes.
max_requests = 0
accesslog = None  # request logs come from the app's JSON logger with the correlation id
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop a dead worker's live gauges from the multiprocess registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
