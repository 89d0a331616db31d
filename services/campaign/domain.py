"""Pure campaign rules: window, band, ceiling, duplicates, eligibility, lifecycle."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.errors import DomainError
from services.common.wib import WIB, to_local, to_utc, to_wib  # noqa: F401 (re-exported)

DRAFT, OPEN, CLOSED = "draft", "open", "closed"


@dataclass(frozen=True, slots=True)
class Band:
    """What each official is asked to spend, in rupiah (inclusive)."""

    min_idr: int
    max_idr: int


def check_definition(starts_at: datetime, ends_at: datetime, band: Band) -> None:
    """A campaign needs a real window and a sane spending band."""
    if ends_at <= starts_at:
        raise DomainError(
            "window_invalid",
            "Waktu selesai harus setelah waktu mulai.",
            "The end time must be after the start time.",
            field="ends_at",
        )
    if band.min_idr < 0 or band.max_idr < 1 or band.min_idr > band.max_idr:
        raise DomainError(
            "band_invalid",
            "Rentang belanja tidak valid (0 <= min <= maks).",
            "Invalid spending band (0 <= min <= max).",
            field="band_max_idr",
        )


def check_transition(status: str, action: str) -> str:
    """draft -> open -> closed; returns the new status."""
    allowed = {("open", DRAFT): OPEN, ("close", OPEN): CLOSED}
    new = allowed.get((action, status))
    if new is None:
        raise DomainError(
            "invalid_transition",
            f"Kampanye berstatus '{status}' tidak dapat di-{action}.",
            f"A campaign in status '{status}' cannot be {action}ed.",
            kind="conflict",
            field="status",
        )
    return new


def check_can_join(status: str) -> None:
    """Officials may join before and during the buying day, not after it closed."""
    if status == CLOSED:
        raise DomainError(
            "campaign_closed",
            "Kampanye sudah ditutup.",
            "The campaign is closed.",
            kind="conflict",
            field="status",
        )


def check_eligible(
    agency: str, region: str, agencies: Collection[str], regions: Collection[str]
) -> None:
    """Each non-empty list restricts who may join (both must match when both are set)."""
    if agencies and agency not in agencies:
        raise DomainError(
            "agency_not_eligible",
            "Instansi Anda tidak termasuk kampanye ini.",
            "Your agency is not eligible for this campaign.",
            field="agency",
        )
    if regions and region not in regions:
        raise DomainError(
            "region_not_eligible",
            "Wilayah Anda tidak termasuk kampanye ini.",
            "Your region is not eligible for this campaign.",
            field="region",
        )


def check_purchase_time(
    status: str,
    purchased_at: datetime,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    skew: timedelta,
) -> None:
    """Purchases count only while the campaign is open and inside its window."""
    if status != OPEN:
        raise DomainError(
            "campaign_not_open",
            "Kampanye tidak sedang dibuka.",
            "The campaign is not open.",
            kind="conflict",
            field="status",
        )
    if purchased_at > now + skew:
        raise DomainError(
            "purchase_in_future",
            "Waktu pembelian ada di masa depan.",
            "The purchase time is in the future.",
            field="purchased_at",
        )
    if not starts_at <= purchased_at <= ends_at:
        raise DomainError(
            "outside_window",
            "Waktu pembelian di luar jadwal kampanye.",
            "The purchase time is outside the campaign window.",
            field="purchased_at",
        )


def check_amount(amount: object, ceiling: int) -> int:
    """A positive whole number of rupiah, not above the configured ceiling."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise DomainError(
            "amount_invalid",
            "Nominal harus bilangan bulat rupiah positif.",
            "The amount must be a positive whole number of rupiah.",
            field="amount_idr",
        )
    if amount > ceiling:
        raise DomainError(
            "amount_above_ceiling",
            f"Nominal melebihi batas Rp{ceiling:,}.".replace(",", "."),
            f"The amount exceeds the ceiling of Rp{ceiling:,}.",
            field="amount_idr",
        )
    return amount


def check_band(spent_idr: int, amount_idr: int, band: Band) -> None:
    """An official's total may not pass the band's maximum (the allotted budget)."""
    if spent_idr + amount_idr > band.max_idr:
        raise DomainError(
            "band_exceeded",
            "Total belanja melebihi batas maksimal per pejabat.",
            "The total would exceed the per-official maximum.",
            field="amount_idr",
        )


def check_seller_named(umkm_id: object, nib: object) -> None:
    """A purchase names its seller once: by NIB, or by the id picked from a seller search."""
    if (umkm_id is None) == (nib is None):
        raise DomainError(
            "seller_required",
            "Sebutkan penjual dengan NIB atau umkm_id (salah satu saja).",
            "Name the seller by NIB or by umkm_id (exactly one of them).",
            field="nib",
        )


def check_sells_on(platform: str, onboarded: Collection[str], declared: Collection[str]) -> None:
    """The business must sell on the platform named: onboarded there, or declared it itself.

    Onboarded platforms were confirmed (by the platform partner, or an operator with the store
    link); a declared one is the owner's own statement at registration, kept because most
    sellers were online before they registered and confirmation lags behind."""
    if platform not in onboarded and platform not in declared:
        known = ", ".join(sorted(set(onboarded) | set(declared))) or "-"
        raise DomainError(
            "platform_not_used",
            f"UMKM ini tidak tercatat berjualan di platform tersebut (tercatat: {known}).",
            f"This business is not known to sell on that platform (known: {known}).",
            field="platform",
        )


def order_key(platform: str, order_ref: str) -> tuple[str, str]:
    """Platforms print order references with varying case and spaces; compare canonically."""
    return platform, "".join(order_ref.split()).upper()


def check_not_duplicate(key: tuple[str, str], known: Collection[tuple[str, str]]) -> None:
    """One platform order is recorded once, by whoever records it first."""
    if key in known:
        raise DomainError(
            "duplicate_order",
            "Nomor pesanan ini sudah dicatat.",
            "This platform order reference was already recorded.",
            kind="conflict",
            field="order_ref",
        )


def progress(spent_idr: int, band: Band) -> dict[str, object]:
    """Where an official stands against the band."""
    state = "below" if spent_idr < band.min_idr else "within"
    if spent_idr > band.max_idr:
        state = "above"
    return {
        "spent_idr": spent_idr,
        "band_min_idr": band.min_idr,
        "band_max_idr": band.max_idr,
        "remaining_to_min_idr": max(0, band.min_idr - spent_idr),
        "remaining_to_max_idr": max(0, band.max_idr - spent_idr),
        "state": state,
    }
