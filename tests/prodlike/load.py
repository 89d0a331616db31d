"""Load through the ingress as real clients: each request leaves from its own loopback address
(127.0.0.x), so the per-client rate limit sees many clients as production would; tokens come
from Keycloak's token endpoint. Every answer is recorded, so a scenario can say which requests
were accepted and check each one's event on the topic and its count in the metrics service.

A scenario registers businesses in provinces no other scenario uses, so the metrics
service's count for those provinces is exactly that scenario's, whatever else is in flight."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.keycloak_for_tests import test_users
from devtools.local_keycloak import password_token
from services.common.config import Settings
from services.common.db.engine import make_engine
from services.common.messaging import contracts as c
from services.registration.partner.handlers import create_partner
from tests.faults.helpers import read_topic, scrape, total
from tests.prodlike.stack import API_HOST, ProdlikeStack
from tests.unit.registration_helpers import payload

TIMEOUT_S = 30.0
_partner_keys: dict[str, str] = {}  # registration database URL -> the partner's API key


def client(stack: ProdlikeStack, addr: int, **headers: str) -> httpx.Client:
    """A client whose connections leave from 127.0.0.<addr>: one real client to nginx."""
    return httpx.Client(base_url=stack.ingress, timeout=TIMEOUT_S,
                        headers={"Host": API_HOST, **headers},
                        transport=httpx.HTTPTransport(local_address=f"127.0.0.{addr}"))


def bearer(stack: ProdlikeStack, user: str) -> dict[str, str]:
    """A fresh access token of a dev-realm user from Keycloak's token endpoint."""
    pw = test_users()[user]["password"]
    tok = password_token(stack.keycloak.token_endpoint, user, pw)["access_token"]
    return {"Authorization": f"Bearer {tok}"}


def partner_key(stack: ProdlikeStack) -> str:
    """One marketplace partner per stack, hashed with its key as `bbi partner create` does."""
    url = stack.env["REGISTRATION_DATABASE_URL"]
    if url not in _partner_keys:
        settings = Settings.from_env("registration", database_url=url,
                                     pii_hash_key=stack.env["BBI_PII_HASH_KEY"])
        _partner_keys[url] = create_partner(make_engine(url), settings, "tokopedia",
                                            "tokopedia", "Tokopedia")
    return _partner_keys[url]


def province_counts(stack: ProdlikeStack, code: str) -> dict[str, Any]:
    """A province's totals as the public API shows them, through the ingress."""
    with client(stack, 7) as http:
        r = http.get(f"/v1/provinces/{code}")
    assert r.status_code == 200, r.text
    return dict(r.json())


@dataclass
class LogSince:
    """The lines a process appends to its log from now on."""

    path: Path
    start: int = 0

    def __post_init__(self) -> None:
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def lines(self, containing: str = "") -> list[str]:
        with self.path.open("rb") as f:
            f.seek(self.start)
            text = f.read().decode(errors="replace")
        return [ln for ln in text.splitlines() if containing in ln]


class Ingress5xx(LogSince):
    """Answers of 500 and above in nginx's access log from now on."""

    def lines(self, containing: str = "") -> list[str]:
        # log_format ingress: $remote_addr $status $request_method $uri $upstream_status ...
        return [ln for ln in super().lines(containing) if len(ln.split()) > 1
                and ln.split()[1].isdigit() and int(ln.split()[1]) >= 500]


@dataclass
class Answer:
    kind: str
    status: int  # 0: no answer
    ids: list[str] = field(default_factory=list)
    code: str = ""


@dataclass
class Load:
    """Registrations in `public` (province, regency) and partner batches in `partner`."""

    stack: ProdlikeStack
    base: int  # payload numbers start here: unique NIK/NIB each, valid NIKs below 10,000
    public: tuple[str, str]
    partner: tuple[str, str]
    answers: list[Answer] = field(default_factory=list)
    _n: int = 0
    _token: tuple[float, dict[str, str]] = (0.0, {})

    def owner(self) -> dict[str, str]:
        """owner1's access token, renewed well inside Keycloak's 5-minute lifetime."""
        if time.monotonic() - self._token[0] > 60:
            self._token = (time.monotonic(), bearer(self.stack, "owner1@bbi.test"))
        return self._token[1]

    def _number(self) -> int:
        self._n += 1
        n = self.base + self._n
        assert n < 10_000, "tests.unit.registration_helpers.nik(n) is 16 digits below 10,000"
        return n

    def _post(self, kind: str, addr: int, path: str, body: Any, **headers: str) -> Answer:
        try:
            with client(self.stack, addr, **headers) as http:
                r = http.post(path, json=body)
        except httpx.HTTPError as exc:
            a = Answer(kind, 0, code=type(exc).__name__)
        else:
            doc = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            ids = ([doc["id"]] if kind == "register" and r.status_code == 201 else
                   [i["id"] for i in doc.get("items", []) if i.get("result") == "created"]
                   if kind == "partner" and r.status_code == 200 else [])
            a = Answer(kind, r.status_code, ids, str(doc.get("code", "")))
        self.answers.append(a)
        return a

    def step(self, registrations: int = 4, partner_batch: int = 5) -> list[Answer]:
        """Public registrations, each from its own address, and one partner batch."""
        out = []
        for _ in range(registrations):
            n = self._number()
            out.append(self._post("register", 10 + n % 240, "/v1/umkm",
                                  payload(n, province_code=self.public[0],
                                          regency_code=self.public[1]), **self.owner()))
        batch = []
        for _ in range(partner_batch):
            n = self._number()
            batch.append(payload(n, province_code=self.partner[0], regency_code=self.partner[1],
                                 merchant_ref=f"TKP-{n}"))
        if batch:
            out.append(self._post("partner", 9, "/v1/partner/onboardings", batch,
                                  **{"X-API-Key": partner_key(self.stack)}))
        return out

    def accepted(self) -> list[str]:
        return [i for a in self.answers for i in a.ids]

    def five_xx(self) -> list[Answer]:
        return [a for a in self.answers if a.status >= 500 or a.status == 0]

    def refused(self) -> list[Answer]:
        return [a for a in self.answers if a.status not in (200, 201) and a.status < 500]

    def published(self) -> tuple[Counter[str], int]:
        """(distinct registration events per business on bbi.umkm, records that repeat an
        event id already seen -- producer retries the consumers drop)."""
        seen: set[str] = set()
        per_business: Counter[str] = Counter()
        repeats = 0
        for rec in read_topic(self.stack.cluster.bootstrap, self.stack.prefix + c.TOPIC_UMKM):
            e = json.loads(rec.value)
            if e["type"] != c.UMKM_REGISTERED:
                continue
            if e["id"] in seen:
                repeats += 1
                continue
            seen.add(e["id"])
            per_business[e["data"]["umkm_id"]] += 1
        return per_business, repeats

    def counted(self) -> int:
        """Registrations the metrics service has counted in this load's provinces."""
        return sum(int(province_counts(self.stack, p)["registrations"])
                   for p in {self.public[0], self.partner[0]})

    def relay(self, name: str) -> float:
        """A counter of the registration worker (its outbox relay)."""
        m = scrape(f"http://127.0.0.1:{self.stack.worker_ports['registration']}/metrics")
        return total(m, name)
