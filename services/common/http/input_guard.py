"""Refuse text that no database here can keep: the NUL character (U+0000).

PostgreSQL text cannot hold U+0000 (psycopg raises DataError, which was a 500), and SQLite
would store a value that every other copy of it (events, the other services' read models on
PostgreSQL) then cannot. So every request is checked once, before any view or database
write: a NUL anywhere in the query string, a string path parameter, a JSON/NDJSON body or a
text body is a 422 `invalid_character` with the place of every such value."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import current_app, request

from services.common.http import auth
from services.common.http.errors import ApiError, field_error

NUL = "\x00"
CODE = "invalid_character"
FIELD_ERROR = field_error(CODE, "Teks tidak boleh berisi karakter NUL (U+0000).",
                          "Text must not contain the NUL character (U+0000).")
# Bodies that are form data are parsed by werkzeug from the stream; reading them here would
# consume it. No service takes them, and they never reach a database as they are.
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def refuse_nul() -> None:
    """Raise 422 if the request carries U+0000 anywhere; 401/403 first on a protected view,
    so the answer never tells an unauthorised caller more than a valid body would."""
    errors: dict[str, Any] = {}
    query = _pairs_with_nul(request.args.items(multi=True))
    if query:
        errors["query"] = query
    path = _pairs_with_nul((k, v) for k, v in (request.view_args or {}).items()
                           if isinstance(v, str))
    if path:
        errors["path"] = path
    body = _body_errors()
    if body:
        errors.update(body)
    if not errors:
        return
    roles = view_roles()
    if roles:
        auth.check_roles(roles)
    raise ApiError(422, CODE, "Permintaan berisi karakter NUL (U+0000) yang tidak diizinkan.",
                   "The request contains the NUL character (U+0000), which is not allowed.",
                   errors=errors)


def view_roles() -> tuple[str, ...] | None:
    """The roles `require_role` demands of the matched view and method, if any."""
    view = current_app.view_functions.get(request.endpoint or "")
    cls = getattr(view, "view_class", None)
    if cls is not None:
        method = request.method.lower()
        view = getattr(cls, method, None) or (getattr(cls, "get", None)
                                              if method == "head" else None)
    roles = getattr(view, "bbi_roles", None)
    return tuple(roles) if roles else None


def _pairs_with_nul(pairs: Any) -> dict[str, list[dict[str, str]]]:
    return {k: [FIELD_ERROR] for k, v in pairs if NUL in k or NUL in v}


def _body_errors() -> dict[str, Any]:
    if request.mimetype in _FORM_TYPES:
        return {}
    data = request.get_data(cache=True)  # the views and webargs read the same cached bytes
    if b"\x00" in data:  # never valid in JSON, and no text format we take allows it
        return {"body": [FIELD_ERROR]}
    if b"\\u0000" not in data:  # the only way JSON can spell U+0000
        return {}
    doc = _parse(data)
    if doc is None:  # not JSON: the view refuses it as such
        return {}
    found = _nul_tree(doc)
    return {"json": found} if found else {}


def _parse(data: bytes) -> Any:
    """The body as JSON, or NDJSON as the list of its non-empty lines (the items registration's
    partner batch reads); None when it is neither."""
    try:
        text = data.decode("utf-8")
        if "ndjson" in request.mimetype:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _nul_tree(node: Any) -> Any:
    """Errors shaped like marshmallow's ({field: {index: {field: [error]}}}) for every string
    or key holding U+0000; None when there is none."""
    if isinstance(node, str):
        return [FIELD_ERROR] if NUL in node else None
    items: Iterator[tuple[Any, Any]]
    if isinstance(node, dict):
        items = iter(node.items())
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    out: dict[str, Any] = {}
    for key, value in items:
        found = _nul_tree(value)
        if isinstance(key, str) and NUL in key:
            found = [FIELD_ERROR]
        if found:
            out[str(key)] = found
    return out or None
