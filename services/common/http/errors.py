"""RFC 9457 problem details: the one error shape every service answers with."""
from __future__ import annotations

from typing import Any

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


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"Data tidak ditemukan ({what}).", f"{what} not found.")


def conflict(code: str, message_id: str, message_en: str, **extra: Any) -> ApiError:
    return ApiError(409, code, message_id, message_en, **extra)


def field_error(code: str, message_id: str, message_en: str) -> dict[str, str]:
    """One field's entry in `errors`: a machine code and both messages."""
    return {"code": code, "message_id": message_id, "message_en": message_en}
