"""Settings from the environment, with defaults that make a zero-setup local run work."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DEV_SECRET = "bbi-local-development-only-secret-change-me"


def env_str(name: str, default: str) -> str:
    """The variable's value; the default when it is unset or empty."""
    return os.environ.get(name) or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    return default if raw == "" else raw in ("1", "true", "yes", "on")


K = TypeVar("K", int, float, bool, str)
_READERS: dict[type, Callable[[str, Any], Any]] = {
    bool: env_bool, int: env_int, float: env_float, str: env_str}


def knob(env: str, default: K) -> K:
    """A service setting field read from the environment variable `env` by `from_env`,
    `default` when unset: the variable and its default are declared once, on the field."""
    return field(default=default, metadata={"env": env})  # type: ignore[no-any-return]



def _env(name: str, default: str) -> str:
    # Common settings keep an explicitly empty value (BBI_TOPIC_PREFIX="" means no prefix).
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    """Everything one service process needs; built by `Settings.from_env(service)`.

    A service with knobs of its own subclasses this in its config.py (a frozen dataclass whose
    fields are `knob("ENV_VAR", default)`), and `ItsSettings.from_env(name)` reads them, so
    handlers receive typed settings instead of reading the environment."""

    service: str
    database_url: str
    kafka_bootstrap_servers: str
    # Auth (services/common/http/auth.py). "oidc": verify the identity provider's RS256/ES256
    # tokens against its JWKS, discovered from the issuer. "dev": HS256 with jwt_secret, for
    # unit tests only; there is no default secret, and "oidc" without an issuer refuses to
    # start (auth.check_settings).
    auth_mode: str = "oidc"
    jwt_algorithm: str = "RS256"
    jwt_secret: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = "bbi"
    jwt_jwks_url: str = ""            # override of the jwks_uri of the issuer's metadata
    jwt_leeway_seconds: int = 30      # clock skew allowed on exp/nbf/iat (at most 300)
    jwks_min_refresh_seconds: int = 10  # floor between two fetches (unknown kid, IdP down)
    jwks_max_age_seconds: int = 3600  # keys are re-fetched this often (kept if that fails)
    jwks_timeout_seconds: float = 3.0
    pii_hash_key: str = LOCAL_DEV_SECRET
    max_body_bytes: int = 1_048_576
    max_page_size: int = 200
    topic_partitions: int = 6
    topic_replication: int = 1
    outbox_batch_size: int = 500
    consumer_max_poll_records: int = 500
    # Prepended to every topic name: lets tests (and tenants) share one broker in isolation.
    topic_prefix: str = ""
    # Idempotency-Key: how long an answer is kept (then the key counts as new), and how long
    # a concurrent retry waits behind the first request before it gets 409 in_progress.
    idempotency_ttl_seconds: int = 86_400
    idempotency_wait_seconds: float = 5.0
    # Consumers' processed event ids are kept this long (longer than any redelivery; see
    # common/messaging/housekeeping.py); the worker prunes both every housekeeping interval.
    processed_events_retention_seconds: int = 7 * 86_400
    housekeeping_interval_seconds: int = 3600
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service: str, **overrides: object) -> Self:
        """Read `BBI_*`, `DATABASE_URL` and `KAFKA_BOOTSTRAP_SERVERS` from the environment."""
        prefix = f"{service.upper()}_"
        default_db = f"sqlite:///{REPO_ROOT / 'var' / f'{service}.db'}"
        values: dict[str, object] = dict(
            service=service,
            # A per-service variable wins so one shell can run all four services.
            database_url=(os.environ.get(prefix + "DATABASE_URL")
                          or _env("DATABASE_URL", default_db)),
            kafka_bootstrap_servers=_env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            auth_mode=_env("BBI_AUTH_MODE", "oidc"),
            jwt_algorithm=_env("BBI_JWT_ALGORITHM",
                               "HS256" if _env("BBI_AUTH_MODE", "") == "dev" else "RS256"),
            jwt_secret=_env("BBI_JWT_SECRET", ""),
            jwt_issuer=_env("BBI_JWT_ISSUER", ""),
            jwt_audience=_env("BBI_JWT_AUDIENCE", "bbi"),
            jwt_jwks_url=_env("BBI_JWT_JWKS_URL", ""),
            jwt_leeway_seconds=env_int("BBI_JWT_LEEWAY_SECONDS", 30),
            jwks_min_refresh_seconds=env_int("BBI_JWKS_MIN_REFRESH_SECONDS", 10),
            jwks_max_age_seconds=env_int("BBI_JWKS_MAX_AGE_SECONDS", 3600),
            jwks_timeout_seconds=float(_env("BBI_JWKS_TIMEOUT_SECONDS", "3")),
            pii_hash_key=_env("BBI_PII_HASH_KEY", LOCAL_DEV_SECRET),
            max_body_bytes=env_int("BBI_MAX_BODY_BYTES", 1_048_576),
            max_page_size=env_int("BBI_MAX_PAGE_SIZE", 200),
            topic_partitions=env_int("BBI_TOPIC_PARTITIONS", 6),
            topic_replication=env_int("BBI_TOPIC_REPLICATION", 1),
            outbox_batch_size=env_int("BBI_OUTBOX_BATCH_SIZE", 500),
            consumer_max_poll_records=env_int("BBI_CONSUMER_MAX_POLL_RECORDS", 500),
            topic_prefix=_env("BBI_TOPIC_PREFIX", ""),
            idempotency_ttl_seconds=env_int("BBI_IDEMPOTENCY_TTL_SECONDS", 86_400),
            idempotency_wait_seconds=float(_env("BBI_IDEMPOTENCY_WAIT_SECONDS", "5")),
            processed_events_retention_seconds=env_int(
                "BBI_PROCESSED_EVENTS_RETENTION_SECONDS", 7 * 86_400),
            housekeeping_interval_seconds=env_int("BBI_HOUSEKEEPING_INTERVAL_SECONDS", 3600),
        )
        for f in fields(cls):  # a service's own knobs (declared with `knob`)
            if "env" in f.metadata:
                values[f.name] = _READERS[type(f.default)](f.metadata["env"], f.default)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


S = TypeVar("S", bound=Settings)


def as_service_settings(settings: Settings, cls: type[S], load: Callable[..., S]) -> S:
    """`settings` as a service's own subclass `cls`: plain Settings built elsewhere (a test, a
    tool) keep every shared value and get the service's knobs from `load` (the environment)."""
    if isinstance(settings, cls):
        return settings
    return load(**{f.name: getattr(settings, f.name) for f in fields(Settings)
                   if f.name != "service"})
