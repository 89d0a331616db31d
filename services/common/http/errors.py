"""RFC 9457 problem details: the one error shape every service answers with."""
from __future__ import annotations

from typing import Any

from services.common.errors import DomainError, FieldMessage

PROBLEM_TYPE_BASE = "https://bbi.go.id/problems/"


class ApiError(Exception):
    """An error a client can act on: status, machine code, messages in Indonesian and English."""

    def __init__(self, status: int, code: str, message_id: str, message_en: str,
                 errors: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status, self.code = status, code
        self.message_id, self.message_en = message_id, message_en
        self.errors, self.headers, self.extra = errors, headers or {}, extra

    def to_problem(self) -> dict[str, Any]:
        return problem(self.status, self.code, self.message_id, self.message_en,
                       self.errors, **self.extra)


def problem(status: int, code: str, message_id: str, message_en: str,
            errors: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": message_en,
        "status": status,
        "detail": f"{message_id} / {message_en}",
        "code": code,
        "message_id": message_id,
        "message_en": message_en,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def not_found(what: str = "resource") -> DomainError:
    return DomainError("not_found", f"Data tidak ditemukan ({what}).", f"{what} not found.",
                       "not_found")


def conflict(code: str, message_id: str, message_en: str, **extra: Any) -> DomainError:
    return DomainError(code, message_id, message_en, "conflict", **extra)


def field_error(code: str, message_id: str, message_en: str) -> dict[str, str]:
    """One field's entry in `errors`: a machine code and both messages."""
    return {"code": code, "message_id": message_id, "message_en": message_en}


def from_domain(err: DomainError) -> ApiError:
    """A broken rule as problem details: its kind gives the status; bad input also names the
    field in `errors` ("_" when the rule is about the request as a whole), or gives the
    error's own map of several fields or rows."""
    errors = None
    if err.errors is not None:
        errors = field_errors(err.errors)
    elif err.kind == "invalid":
        errors = {err.field or "_": [field_error(err.code, err.message_id, err.message_en)]}
    headers = None if err.retry_after is None else {"Retry-After": str(err.retry_after)}
    return ApiError(err.status, err.code, err.message_id, err.message_en, errors, headers,
                    **err.extra)


# marshmallow's own messages, which carry no code and no Indonesian text.
_MARSHMALLOW_ID = {
    "Missing data for required field.": ("required", "Wajib diisi."),
    "Unknown field.": ("unknown_field", "Kolom tidak dikenal."),
    "Not a valid integer.": ("not_integer", "Harus bilangan bulat."),
    "Not a valid string.": ("not_string", "Harus teks."),
    "Not a valid boolean.": ("not_boolean", "Harus benar/salah."),
    "Field may not be null.": ("null", "Tidak boleh kosong."),
    "Not a valid UUID.": ("not_uuid", "Bukan UUID yang valid."),
    "Not a valid datetime.": ("not_datetime", "Bukan tanggal-waktu yang valid."),
    "Invalid input type.": ("invalid_type", "Jenis masukan tidak valid."),
    "Not a valid list.": ("not_list", "Harus daftar."),
}


def _entry(msg: str) -> dict[str, str]:
    if isinstance(msg, FieldMessage):  # ours: code and both messages, typed
        return msg.as_dict()
    code, mid = _MARSHMALLOW_ID.get(msg, ("invalid", msg))
    return field_error(code, mid, msg)


def field_errors(messages: Any) -> dict[str, Any]:
    """marshmallow messages (a ValidationError's, or flask-smorest's per location) as the
    problem body's `errors`: {field: [{code, message_id, message_en}]}, nested as given."""
    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return {str(k): convert(v) for k, v in node.items()}
        if isinstance(node, list) and all(isinstance(x, str) for x in node):
            return [_entry(msg) for msg in node]
        return node

    converted = convert(messages)
    return converted if isinstance(converted, dict) else {"_": converted}
