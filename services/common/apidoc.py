"""The OpenAPI side of our errors: every service answers RFC 9457 problem details
(application/problem+json), so the document must say so instead of flask-smorest's own
error shape, and a bearer-protected operation documents its 401 and 403."""
from __future__ import annotations

import http
from typing import Any

from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields

PROBLEM_JSON = "application/problem+json"


class ProblemSchema(Schema):
    """RFC 9457 problem details as services.common.errors.problem builds them."""

    class Meta:
        unknown = INCLUDE  # some errors add context fields (id, current_status, ...)

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "machine-readable code"})
    message_id = fields.String(required=True, metadata={"description": "Bahasa Indonesia"})
    message_en = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "per-field errors by location and field"})


class ServiceApi(Api):
    """flask-smorest Api whose documented error responses are problem details."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # Same lazily registered responses as flask-smorest, under the problem media type.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {"description": "Problem details (RFC 9457)",
                                   "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


class SecuredResponses(BasePlugin):
    """Operations that declare bearer security also document 401 and 403, and error
    responses documented by description only (alt_response) get the problem body."""

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **_: Any) -> None:
        for op in (operations or {}).values():
            if not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            if op.get("security"):
                responses.setdefault("401", "UNAUTHORIZED")
                responses.setdefault("403", "FORBIDDEN")
            for status, resp in responses.items():
                if str(status).isdigit() and int(status) >= 400 and isinstance(resp, dict) \
                        and "content" not in resp:
                    resp["content"] = {PROBLEM_JSON: {"schema": "Problem"}}
