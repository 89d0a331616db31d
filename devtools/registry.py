"""The services the developer tools know, listed here and nowhere else: the `bbi` CLI, the
local run and the tests find a service's parts through this registry (production code never
imports it). Every service has the same parts:
services/<name>/config.py: load_settings(**overrides) -> Settings; WORKER_METRICS_PORT
services/<name>/store.py:  metadata (sqlalchemy.MetaData, from db.engine.new_metadata())
services/<name>/app.py:    create_app(settings=None, engine=None) -> Flask
services/<name>/worker.py: build_worker(settings=None, engine=None) -> Worker"""
from __future__ import annotations

import importlib
from types import ModuleType

from services.campaign import config as campaign_config
from services.metrics import config as metrics_config
from services.registration import config as registration_config
from services.training import config as training_config

SERVICES = ("registration", "training", "campaign", "metrics")
WEB_PORTS = {"registration": 8001, "training": 8002, "campaign": 8003, "metrics": 8004,
             "portal": 8000}  # the portal: web pages only, no worker, no database of its own
WORKER_METRICS_PORTS = {
    "registration": registration_config.WORKER_METRICS_PORT,
    "training": training_config.WORKER_METRICS_PORT,
    "campaign": campaign_config.WORKER_METRICS_PORT,
    "metrics": metrics_config.WORKER_METRICS_PORT,
}


def module(service: str, part: str) -> ModuleType:
    """services.<service>.<part> for a registered service."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"services.{service}.{part}")

