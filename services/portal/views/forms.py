"""Turning form posts into API bodies, and API problems back into per-field messages."""
from __future__ import annotations

import re
import secrets
from typing import Any

from flask import session

from services.portal.api_client import ApiProblem, FieldError
from services.portal.i18n import t


def idempotency_key() -> str:
    """One key per rendered form: a double-submitted form replays the first answer."""
    return secrets.token_urlsafe(16)


def text(form: Any, name: str) -> str | None:
    value = (form.get(name) or "").strip()
    return value or None


def rupiah_in(form: Any, name: str) -> Any:
    """'Rp 1.500.000' -> 1500000; anything else goes to the API as typed, which names it."""
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    digits = re.sub(r"[\s.,]|^Rp", "", raw, flags=re.IGNORECASE)
    return int(digits) if digits.isdigit() else raw


def field_messages(problem: ApiProblem) -> dict[str, str]:
    """{"nik": "NIK tidak valid."}: one message per field, in the reader's language."""
    def say(errs: list[FieldError]) -> str:
        return " ".join(t(e.message_id, e.message_en) for e in errs)
    return {name.replace(".", "_"): say(errs) for name, errs in problem.fields.items()}


def remember_business(umkm_id: str | None) -> str | None:
    """The business the owner is working with (training, certificates)."""
    if umkm_id:
        session["umkm_id"] = umkm_id
    return session.get("umkm_id")
