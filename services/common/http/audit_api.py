"""GET /v1/audit/<service>: admins read a service's audit log (filters, newest first, keyset
pages). Operators cannot: the log records what they did. Each service with an audit table
registers `blueprint("<service>")` on its Api; the service name in the path lets the one
Ingress host route each log to its own service."""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow.exceptions import ValidationError

from services.common.audit import audit_log
from services.common.errors import FieldMessage
from services.common.http.auth import require_role
from services.common.http.web import get_engine, get_settings
from services.common.validators import Pattern
from services.common.wib import WibDateTime

_CODE = Pattern(r"^[A-Za-z0-9._:,@-]{1,200}$", error=FieldMessage(
    "invalid", "Hanya huruf, angka dan . _ : , @ -.", "Letters, digits and . _ : , @ - only."))


class AuditArgs(Schema):
    actor = fields.String(validate=_CODE, metadata={"description": "the actor's subject"})
    action = fields.String(validate=_CODE, metadata={"example": "umkm.verify"})
    target = fields.String(validate=_CODE, metadata={
        "description": "`kind:id` for one record, or `kind` for every record of that kind",
        "example": "umkm"})
    since = WibDateTime(metadata={"description": "from this time (inclusive; WIB if naive)"})
    until = WibDateTime(metadata={"description": "before this time (exclusive)"})
    cursor = fields.Integer(validate=validate.Range(1, 2**63 - 1), metadata={
        "description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 1000))

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise ValidationError(FieldMessage("range_invalid", "`since` harus sebelum `until`.",
                                               "`since` must be before `until`."), "until")


class AuditEntry(Schema):
    id = fields.Integer()
    at = WibDateTime()
    actor = fields.String()
    role = fields.String(metadata={"description": "the actor's roles, comma-separated"})
    action = fields.String()
    target = fields.String()
    correlation_id = fields.String(allow_none=True)
    detail = fields.Dict(metadata={"description": "codes and counts only, never personal data"})


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEntry))
    next_cursor = fields.Integer(allow_none=True)


def query(conn: sa.Connection, args: dict[str, Any], max_page: int) -> dict[str, Any]:
    """One page, newest first; `cursor` is the last id seen (ids only grow)."""
    t = audit_log.c
    q = sa.select(audit_log)
    if args.get("actor"):
        q = q.where(t.actor == args["actor"])
    if args.get("action"):
        q = q.where(t.action == args["action"])
    if args.get("target"):
        target = args["target"]
        q = q.where(t.target == target if ":" in target else
                    sa.or_(t.target == target, t.target.startswith(target + ":", autoescape=True)))
    if args.get("since"):
        q = q.where(t.at >= args["since"])
    if args.get("until"):
        q = q.where(t.at < args["until"])
    if args.get("cursor"):
        q = q.where(t.id < args["cursor"])
    limit = min(args["limit"], max_page)
    rows = conn.execute(q.order_by(t.id.desc()).limit(limit + 1)).all()
    items = [dict(r._mapping) | {"detail": json.loads(r.detail)} for r in rows[:limit]]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


def blueprint(service: str) -> Blueprint:
    """A fresh blueprint per app (flask-smorest binds a Blueprint to one Api)."""
    blp = Blueprint("audit", __name__, url_prefix=f"/v1/audit/{service}",
                    description="Log audit (admin) / audit log of operator and admin actions "
                                "and of reads and exports of personal data")

    @blp.route("")
    class Audit(MethodView):
        @require_role("admin")
        @blp.arguments(AuditArgs, location="query")
        @blp.response(200, AuditPage)
        @blp.doc(security=[{"bearerAuth": []}])
        def get(self, args: dict[str, Any]) -> dict[str, Any]:
            """Entri log audit, terbaru dulu / audit entries, newest first (admin only)."""
            with get_engine().connect() as conn:
                return query(conn, args, get_settings().max_page_size)

    return blp
