"""Rows -> what callers may see: the owner's non-personal view and the operator's view."""
from __future__ import annotations

from typing import Any

from services.registration.domain import mask_nik

PUBLIC_FIELDS = ("id", "status", "curation", "curation_reason", "business_name", "nib",
                 "channel", "partner_code", "province_code", "regency_code", "kbli_code",
                 "kbli_section", "scale", "qris", "registered_at", "verified_at",
                 "withdrawn_at", "claimed_at")
OPERATOR_FIELDS = ("owner_name", "phone", "email", "address", "postal_code", "npwp",
                   "mentor_org", "capital_idr", "annual_sales_idr", "consent_version",
                   "consent_at")


def split_platforms(text: str | None) -> list[str]:
    """Declared platforms are stored as comma-separated codes (a bounded fixed list)."""
    return [p for p in (text or "").split(",") if p]


def view(row: Any, platforms: list[dict[str, Any]], operator: bool) -> dict[str, Any]:
    """The fields of one registration that this caller may see."""
    m = row._mapping
    out = {k: m[k] for k in PUBLIC_FIELDS}
    out["platforms_declared"] = split_platforms(m["platforms_declared"])
    out["platforms"] = platforms
    if operator:
        out.update({k: m[k] for k in OPERATOR_FIELDS})
        out["nik_masked"] = mask_nik(m["nik_last4"]) if m["nik_last4"] else None
        if m["npwp_last4"]:  # an NPWP that is a NIK: masked like one
            out["npwp"] = mask_nik(m["npwp_last4"])
    return out
