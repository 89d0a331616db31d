"""Who an official is, from the bearer token: a pseudonym, the agency and the region."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.auth import Principal, hash_secret
from services.common.config import Settings
from services.common.errors import ApiError
from services.common.reference import province_name

try:  # registration owns the NIP rule; fall back to the bare format if it is absent
    from services.registration.domain import validate_nip as _validate_nip
except ImportError:  # pragma: no cover - depends on which services are installed
    _validate_nip = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Official:
    """An official as this service knows them: never the NIP itself."""

    official_id: str
    agency: str
    region: str


def pseudonym(settings: Settings, nip: str) -> str:
    """First 32 hex chars of the keyed hash of the NIP: stable, not reversible without the key."""
    return hash_secret(settings.pii_hash_key, "official:" + nip)[:32]


def _valid_nip(nip: str) -> str | None:
    if _validate_nip is not None:
        try:
            return str(_validate_nip(nip))
        except Exception:  # noqa: BLE001 - any rule broken means "not a NIP"
            return None
    compact = "".join(nip.split())
    return compact if len(compact) == 18 and compact.isascii() and compact.isdigit() else None


def official_from(settings: Settings, principal: Principal) -> Official:
    """Check the token's NIP subject and `agency`/`region` claims (403 when unusable)."""
    nip = _valid_nip(principal.subject)
    agency: Any = principal.claims.get("agency")
    region: Any = principal.claims.get("region")
    if (nip is None or not isinstance(agency, str) or not 0 < len(agency.strip()) <= 100
            or not isinstance(region, str) or province_name(region) is None):
        raise ApiError(403, "official_claims_invalid",
                       "Token pejabat harus memuat NIP yang sah, instansi dan kode provinsi.",
                       "An official's token needs a valid NIP subject, an agency and a "
                       "province code.")
    return Official(pseudonym(settings, nip), agency.strip(), region)
