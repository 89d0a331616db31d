"""How the CLI, gunicorn and tests find a service's parts by name (one convention for all):
services/<name>/config.py: load_settings(**overrides) -> Settings
services/<name>/store.py:  metadata (sqlalchemy.MetaData, from db.new_metadata())
services/<name>/app.py:    create_app(settings=None, engine=None) -> Flask
services/<name>/worker.py: build_worker(settings=None, engine=None) -> Worker"""
from __future__ import annotations

import importlib
from typing import Any

SERVICES = ("registration", "training", "campaign", "metrics")
WEB_PORTS = {"registration": 8001, "training": 8002, "campaign": 8003, "metrics": 8004,
             "portal": 8000}  # the portal: web pages only, no worker, no database of its own
WORKER_METRICS_PORTS = {"registration": 9101, "training": 9102, "campaign": 9103,
                        "metrics": 9104}


def module(service: str, part: str) -> Any:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.{part}")


def available() -> list[str]:
    """Services whose code exists (issues land one at a time)."""
    out = []
    for s in SERVICES:
        try:
            module(s, "app")
            out.append(s)
        except ModuleNotFoundError:
            continue
    return out
