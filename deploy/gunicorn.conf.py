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
# No control socket (gunicorn >= 25 opens $HOME/.gunicorn/gunicorn.ctl by default): every
# master on one host would claim the same path (make run starts five), the production root
# filesystem is read-only, and nothing here uses gunicornc.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Bodies: gunicorn has no body-size limit of its own. The app refuses above BBI_MAX_BODY_BYTES
# (the partner batch route above REGISTRATION_PARTNER_MAX_BODY_BYTES) with 413 problem details
# and the Ingress bounds what reaches us; tests/deploy/test_edge.py checks the three agree.
# A long partner batch does not trip `timeout`: gthread workers' main loop keeps beating
# while a request thread works; the Ingress's proxy-read-timeout bounds it instead.


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Drop a dead worker's live gauges from the multiprocess registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
