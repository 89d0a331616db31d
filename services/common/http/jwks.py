"""The identity provider's signing keys: discovered from the issuer's OpenID metadata, cached
per process, re-fetched when a token names an unknown `kid` -- but never more often than
`min_refresh` seconds, so a flood of made-up kids cannot hammer the identity provider.

While the identity provider is unreachable, cached keys keep verifying; only a token whose
key is not cached gets `IdentityProviderUnavailable` (the API answers 503 + Retry-After).
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.request
from typing import Any

import jwt

log = logging.getLogger(__name__)


class IdentityProviderUnavailable(Exception):
    """The keys could not be fetched; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UnknownKey(Exception):
    """The JWKS was fetched and does not hold the token's kid."""


def _get_json(url: str, timeout: float) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
        return json.loads(resp.read(1_000_000))


class JwksCache:
    """Signing keys of one issuer for one pinned algorithm; thread-safe."""

    def __init__(self, issuer: str, algorithm: str, *, jwks_url: str = "",
                 min_refresh: float = 10.0, max_age: float = 3600.0, timeout: float = 3.0,
                 clock: Any = time.monotonic) -> None:
        self.issuer = issuer.rstrip("/")
        self.algorithm = algorithm
        self.jwks_url = jwks_url
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.timeout = timeout
        self.clock = clock
        self.keys: dict[str, Any] = {}
        self.fetches = 0            # successful + failed attempts (tests read it)
        self._fetched_at: float | None = None   # last successful fetch
        self._tried_at: float | None = None     # last attempt, successful or not
        self._last_error = ""
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> Any:
        """The verification key for kid; UnknownKey or IdentityProviderUnavailable."""
        now = self.clock()
        key = self.keys.get(kid)
        stale = self._fetched_at is None or now - self._fetched_at >= self.max_age
        if key is not None and not stale:
            return key
        with self._lock:
            key = self.keys.get(kid)
            now = self.clock()
            if key is None or self._fetched_at is None or now - self._fetched_at >= self.max_age:
                self._refresh(now)
            key = self.keys.get(kid)
        if key is not None:
            return key  # possibly from an older fetch when the refresh failed: still good
        if self._last_error:
            raise IdentityProviderUnavailable(self._retry_after(), self._last_error)
        raise UnknownKey(kid)

    def _retry_after(self) -> int:
        waited = self.clock() - (self._tried_at or 0.0)
        return max(1, math.ceil(self.min_refresh - waited))

    def _refresh(self, now: float) -> None:
        """Fetch the JWKS unless an attempt was made less than min_refresh seconds ago."""
        if self._tried_at is not None and now - self._tried_at < self.min_refresh:
            return
        self._tried_at = now
        self.fetches += 1
        try:
            url = self.jwks_url or self._discover()
            keys = self._parse(_get_json(url, self.timeout))
        except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"; keep keys
            self._last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("identity provider keys unavailable (%s); %d cached keys stay in use",
                        self._last_error, len(self.keys))
            return
        self._last_error = ""
        self._fetched_at = now
        # Keys that disappeared from the JWKS are dropped: a removed key no longer verifies.
        self.keys = keys

    def _discover(self) -> str:
        meta = _get_json(self.issuer + "/.well-known/openid-configuration", self.timeout)
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
            raise ValueError(f"metadata names issuer {meta.get('issuer')!r}, not ours")
        self.jwks_url = str(meta["jwks_uri"])
        return self.jwks_url

    def _parse(self, jwks: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "kid" not in jwk:
                continue  # e.g. Keycloak's RSA-OAEP encryption key
            if jwk.get("alg", self.algorithm) != self.algorithm:
                continue
            try:
                out[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm=self.algorithm).key
            except jwt.PyJWTError:
                continue
        if not out:
            raise ValueError(f"JWKS holds no {self.algorithm} signing key")
        return out
