"""Load through the ingress as real clients: each request leaves from its own loopback address
(127.0.0.x), so the per-client rate limit sees many clients as production would; tokens come
from Keycloak's token endpoint. Every answer is recorded, so a scenario can say which requests
were accepted and check each one's event on the topic and in the metrics."""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from devtools.local_keycloak import password_token
from services.common import contracts as c
from services.common.config import Settings
from services.common.db import make_engine
from services.registration.partner import create_partner
from tests.faults.helpers import read_topic, scrape, total
from tests.prodlike.stack import API_HOST, ProdlikeStack
from tests.unit.registration_helpers import payload

TIMEOUT_S = 30.0


def client(stack: ProdlikeStack, addr: int, **headers: str) -> httpx.Client:
    """A client whose connections leave from 127.0.0.<addr>: one real client to nginx."""
    return httpx.Client(base_url=stack.ingress, timeout=TIMEOUT_S,
                        headers={"Host": API_HOST, **headers},
                        transport=httpx.HTTPTransport(local_address=f"127.0.0.{addr}"))


@dataclass
class Answer:
    kind: str
    status: int  # 0: no answer
    ids: list[str] = field(default_factory=list)
    code: str = ""


@dataclass
class Load:
    stack: ProdlikeStack
    base: int  # payload numbers start here (unique NIK/NIB per registration)
    answers: list[Answer] = field(default_factory=list)
    _n: int = 0
    _token: tuple[float, str] = (0.0, "")
    _api_key: str = ""

    def owner(self) -> dict[str, str]:
        """owner1's access token, renewed well inside Keycloak's 5-minute lifetime."""
        if time.monotonic() - self._token[0] > 60:
            from devtools.keycloak_for_tests import test_users

            pw = test_users()["owner1@bbi.test"]["password"]
            tok = password_token(self.stack.keycloak.token_endpoint, "owner1@bbi.test", pw)
            self._token = (time.monotonic(), tok["access_token"])
        return {"Authorization": "Bearer " + self._token[1]}

    def api_key(self) -> str:
        if not self._api_key:  # hashed with the stack's key, as `bbi partner create` would
            env = self.stack.env
            settings = Settings.from_env("registration",
                                         database_url=env["REGISTRATION_DATABASE_URL"],
                                         pii_hash_key=env["BBI_PII_HASH_KEY"])
            self._api_key = create_partner(make_engine(settings.database_url), settings,
                                           "tokopedia", "tokopedia", "Tokopedia")
        return self._api_key

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
            self._n += 1
            n = self.base + self._n
            out.append(self._post("register", 10 + n % 240, "/v1/umkm",
                                  payload(n, province_code="31", regency_code="3171"),
                                  **self.owner()))
        batch = []
        for _ in range(partner_batch):
            self._n += 1
            n = self.base + self._n
            batch.append(payload(n, province_code="32", regency_code="3273",
                                 merchant_ref=f"TKP-{n}"))
        out.append(self._post("partner", 9, "/v1/partner/onboardings", batch,
                              **{"X-API-Key": self.api_key()}))
        return out

    def accepted(self) -> list[str]:
        return [i for a in self.answers for i in a.ids]

    def five_xx(self) -> list[Answer]:
        return [a for a in self.answers if a.status >= 500 or a.status == 0]

    def refused(self) -> list[Answer]:
        return [a for a in self.answers if a.status not in (200, 201) and a.status < 500]

    def published(self) -> Counter[str]:
        """How many distinct registration events each business has on bbi.umkm."""
        seen: set[str] = set()
        out: Counter[str] = Counter()
        for rec in read_topic(self.stack.cluster.bootstrap, self.stack.prefix + c.TOPIC_UMKM):
            e = json.loads(rec.value)
            if e["type"] == c.UMKM_REGISTERED and e["id"] not in seen:
                seen.add(e["id"])
                out[e["data"]["umkm_id"]] += 1
        return out

    def counted(self) -> int:
        """Registrations the metrics service has counted (all channels, all provinces)."""
        return int(total(scrape(self.stack.url("metrics", "/metrics")),
                         "bbi_umkm_registrations_total"))

    def relay(self, name: str) -> float:
        m = scrape(f"http://127.0.0.1:{self.stack.worker_ports['registration']}/metrics")
        return total(m, name)
