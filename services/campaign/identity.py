"""Who an official is, from the bearer token: a pseudonym, the agency, the region and its zone.

Its own module because the views build an Official and the handlers and queries act for one,
and it is neither a pure rule (it reads the token and the hash key) nor storage."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Any

from services.common.config import Settings
from services.common.errors import DomainError
from services.common.http.auth import Principal, hash_secret
from services.common.reference import province_name, province_zone
from services.common.validators import RuleBroken, validate_nip
from services.common.wib import zone_of


@dataclass(frozen=True, slots=True)
class Official:
    """An official as this service knows them: never the NIP itself."""

    official_id: str
    agency: str
    region: str  # Kemendagri province code: decides eligibility and the official's time zone

    @property
    def zone(self) -> timezone:
        """Where this official reads clocks: WIB, WITA or WIT by their province."""
        return zone_of(self.region)

    @property
    def zone_name(self) -> str:
        return province_zone(self.region) or "WIB"


def pseudonym(settings: Settings, nip: str) -> str:
    """First 32 hex chars of the keyed hash of the NIP: stable, not reversible without the key."""
    return hash_secret(settings.pii_hash_key, "official:" + nip)[:32]


def _valid_nip(nip: object) -> str | None:
    try:
        return validate_nip(nip)
    except RuleBroken:
        return None


def official_from(settings: Settings, principal: Principal) -> Official:
    """Check the token's NIP and `agency`/`region` claims (403 when unusable).

    The NIP is the `nip` claim (an identity provider's attribute, the subject being the
    person's account) or, for tokens that carry none, the subject itself."""
    nip = _valid_nip(principal.claims.get("nip", principal.subject))
    agency: Any = principal.claims.get("agency")
    region: Any = principal.claims.get("region")
    if (nip is None or not isinstance(agency, str) or not 0 < len(agency.strip()) <= 100
            or not isinstance(region, str) or province_name(region) is None):
        raise DomainError("official_claims_invalid",
                          "Token pejabat harus memuat NIP yang sah, instansi dan kode provinsi.",
                          "An official's token needs a valid NIP, an agency and a province "
                          "code.", "forbidden")
    return Official(pseudonym(settings, nip), agency.strip(), region)
