"""The ceiling of the public registration benchmark: a bare Flask endpoint, served by the same
gunicorn settings (deploy/gunicorn.conf.py), that writes the same two rows as a registration
(the umkm row and its outbox event) in one raw SQL transaction. No validation, rate limit,
duplicate check, marshmallow, problem details, metrics or token: what is left is HTTP parsing,
JSON and the database round trips, the floor any registration endpoint pays on this machine.

gunicorn -c deploy/gunicorn.conf.py 'bench.ceiling_app:create_app()'
with BENCH_CEILING_DATABASE_URL pointing at a database migrated with the registration schema.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, request

from services.common.db.engine import make_engine

_UMKM = (
    "INSERT INTO umkm (id, status, channel, business_name, business_name_norm, owner_name,"
    " nik_hash, nik_last4, nib, phone, email, address, postal_code, province_code,"
    " regency_code, kbli_code, kbli_section, capital_idr, scale, platforms_declared, qris,"
    " consent_version, consent_at, registered_at, updated_at) VALUES (%(id)s, 'registered',"
    " 'public', %(name)s, %(name_norm)s, %(owner)s, %(nik_hash)s, %(last4)s, %(nib)s,"
    " %(phone)s, %(email)s, %(address)s, %(postal)s, %(province)s, %(regency)s, %(kbli)s, 'C',"
    " %(capital)s, 'mikro', %(platforms)s, %(qris)s, %(consent)s, %(now)s, %(now)s, %(now)s)")
_OUTBOX = (
    "INSERT INTO outbox (topic, key, event_id, event_type, payload, created_at)"
    " VALUES ('bench.ceiling', %(id)s, %(event_id)s, 'bbi.umkm.registered.v1', %(payload)s,"
    " %(now)s)")


def create_app() -> Flask:
    app = Flask("bench-ceiling")
    engine = make_engine(os.environ["BENCH_CEILING_DATABASE_URL"])

    @app.post("/v1/umkm")
    def register() -> Response:
        d = request.get_json()
        now = datetime.now(UTC)
        row = {"id": str(uuid.uuid4()), "name": d["business_name"],
               "name_norm": d["business_name"].lower(), "owner": d["owner_name"],
               "nik_hash": hashlib.sha256(d["nik"].encode()).hexdigest(),
               "last4": d["nik"][-4:], "nib": d["nib"], "phone": d["phone"][:20],
               "email": d["email"], "address": d["address"], "postal": d["postal_code"],
               "province": d["province_code"], "regency": d["regency_code"],
               "kbli": d["kbli_code"], "capital": d["capital_idr"],
               "platforms": ",".join(d["platforms"]), "qris": d["qris"],
               "consent": d["consent"]["version"], "now": now}
        event = json.dumps({"id": str(uuid.uuid4()), "type": "bbi.umkm.registered.v1",
                            "data": {"umkm_id": row["id"], "province_code": row["province"],
                                     "scale": "mikro"}}).encode()
        with engine.begin() as conn:
            conn.exec_driver_sql(_UMKM, row)
            conn.exec_driver_sql(_OUTBOX, {"id": row["id"], "event_id": str(uuid.uuid4()),
                                           "payload": event, "now": now})
        return Response(json.dumps({"id": row["id"], "status": "registered"}), status=201,
                        mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app
