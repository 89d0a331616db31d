"""Use cases of the campaign service, each one unit of work (state + outbox events)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.campaign import domain, store
from services.campaign.config import CampaignSettings
from services.campaign.identity import Official
from services.campaign.queries import band_of, campaign_or_404, purchase_view
from services.common import audit, umkm_directory
from services.common.db.engine import is_unique_violation, new_id, utcnow
from services.common.errors import DomainError
from services.common.http.errors import conflict
from services.common.messaging import contracts
from services.common.messaging.uow import UnitOfWork

SOURCE = "campaign"


def uow(engine: Engine, settings: CampaignSettings) -> UnitOfWork:
    return UnitOfWork(engine, store.metadata, SOURCE, settings.topic_prefix)


def create_campaign(engine: Engine, settings: CampaignSettings,
                    data: dict[str, Any]) -> dict[str, Any]:
    """An operator schedules a buying day (times typed in WIB, stored UTC)."""
    starts, ends = domain.to_utc(data["starts_at"]), domain.to_utc(data["ends_at"])
    domain.check_definition(starts, ends, domain.Band(data["band_min_idr"],
                                                      data["band_max_idr"]))
    row = {"id": new_id(), "code": data["code"], "name": data["name"],
           "description": data.get("description") or "", "starts_at": starts, "ends_at": ends,
           "band_min_idr": data["band_min_idr"], "band_max_idr": data["band_max_idr"],
           "eligible_agencies": sorted(set(data.get("eligible_agencies") or [])),
           "eligible_regions": sorted(set(data.get("eligible_regions") or [])),
           "status": domain.DRAFT, "created_at": utcnow()}
    try:
        with uow(engine, settings) as u:
            store.add_campaign(u.conn, row)
            u.publish(contracts.CAMPAIGN_CREATED, {k: row[k] for k in (
                "code", "starts_at", "ends_at", "band_min_idr", "band_max_idr")}
                | {"campaign_id": row["id"]})
            audit.record(u.conn, audit.acting(), "campaign.create", f"campaign:{row['code']}")
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise conflict("code_taken", "Kode kampanye sudah dipakai.",
                       "This campaign code is already taken.") from None
    return row


def transition(engine: Engine, settings: CampaignSettings, code: str,
               action: str) -> dict[str, Any]:
    """Open or close a campaign; closing publishes the final totals."""
    with uow(engine, settings) as u:
        c = campaign_or_404(u.conn, code, lock=True)
        status = domain.check_transition(c.status, action)
        stamp = {"open": "opened_at", "close": "closed_at"}[action]
        audit.record(u.conn, audit.acting(), f"campaign.{action}", f"campaign:{c.code}")
        store.set_status(u.conn, c.id, status, stamp, utcnow())
        base = {"campaign_id": c.id, "code": c.code}
        if action == "open":
            u.publish(contracts.CAMPAIGN_OPENED, base)
        else:
            u.publish(contracts.CAMPAIGN_CLOSED, base | store.totals(u.conn, c.id))
        return dict(campaign_or_404(u.conn, code)._mapping)


def join(engine: Engine, settings: CampaignSettings, official: Official,
         code: str) -> dict[str, Any]:
    """An eligible official joins (once) before or during the buying day."""
    try:
        with uow(engine, settings) as u:
            c = campaign_or_404(u.conn, code)
            domain.check_can_join(c.status)
            domain.check_eligible(official.agency, official.region, c.eligible_agencies,
                                  c.eligible_regions)
            if store.get_participant(u.conn, c.id, official.official_id) is not None:
                raise _already_joined()
            store.add_participant(u.conn, {
                "campaign_id": c.id, "official_id": official.official_id,
                "agency": official.agency, "region": official.region, "spent_idr": 0,
                "joined_at": utcnow()})
            u.publish(contracts.CAMPAIGN_JOINED, {"campaign_id": c.id, "code": c.code,
                                                  "official_id": official.official_id,
                                                  "agency": official.agency})
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise _already_joined() from None
    return {"code": c.code, "official_id": official.official_id, "agency": official.agency,
            "region": official.region} | domain.progress(0, band_of(c))


def _already_joined() -> DomainError:
    return conflict("already_joined", "Anda sudah bergabung dengan kampanye ini.",
                    "You have already joined this campaign.")


def record_purchase(engine: Engine, settings: CampaignSettings, official: Official, code: str,
                    data: dict[str, Any]) -> dict[str, Any]:
    """An official records one online purchase from a registered UMKM, named by NIB or id."""
    now = utcnow()
    purchased_at = _purchase_time(data["purchased_at"], official)
    domain.check_seller_named(data.get("umkm_id"), data.get("nib"))
    amount = domain.check_amount(data["amount_idr"], settings.max_purchase_idr)
    try:
        with uow(engine, settings) as u:
            c, biz = _checked_purchase(u.conn, settings, official, code, data, amount,
                                       purchased_at, now)
            row = {"id": new_id(), "campaign_id": c.id, "official_id": official.official_id,
                   "agency": official.agency, "umkm_id": biz.umkm_id,
                   "province_code": biz.province_code, "platform": data["platform"],
                   "order_ref": data["order_ref"].strip(),
                   "order_key": domain.order_key(data["platform"], data["order_ref"])[1],
                   "amount_idr": amount, "purchased_at": purchased_at, "recorded_at": now}
            store.add_purchase(u.conn, row)
            u.publish(contracts.CAMPAIGN_PURCHASE_RECORDED, {
                "campaign_id": c.id, "code": c.code, "purchase_id": row["id"],
                "official_id": official.official_id, "agency": official.agency,
                "umkm_id": row["umkm_id"], "province_code": biz.province_code,
                "platform": row["platform"], "amount_idr": amount,
                "purchased_at": purchased_at})
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise _duplicate() from None
    return purchase_view(row, official, biz.trade_name, biz.nib)


def _checked_purchase(conn: sa.Connection, settings: CampaignSettings, official: Official,
                      code: str, data: dict[str, Any], amount: int, purchased_at: datetime,
                      now: datetime) -> tuple[store.Row, umkm_directory.KnownUmkm]:
    """Every rule a purchase must pass, in the order the caller learns of them; the official's
    spend is added here, atomically, as the last one. Returns the campaign and the seller."""
    c = campaign_or_404(conn, code)
    domain.check_purchase_time(c.status, purchased_at, c.starts_at, c.ends_at, now,
                               timedelta(seconds=settings.clock_skew_seconds))
    p = store.get_participant(conn, c.id, official.official_id)
    if p is None:
        raise conflict("not_joined", "Bergabunglah dengan kampanye terlebih dulu.",
                       "Join the campaign first.")
    biz = _seller(conn, settings, data)
    domain.check_sells_on(data["platform"], biz.platforms, biz.platforms_declared)
    _check_new_order(conn, domain.order_key(data["platform"], data["order_ref"]))
    domain.check_band(p.spent_idr, amount, band_of(c))
    # The atomic UPDATE is the real guard: a parallel purchase may have landed.
    if not store.add_spend(conn, c.id, official.official_id, amount, c.band_max_idr):
        domain.check_band(c.band_max_idr, amount, band_of(c))
    return c, biz


def _purchase_time(value: datetime, official: Official) -> datetime:
    """A naive time is the official's local time (their province's zone); stored as UTC."""
    try:
        utc = domain.to_utc(value, official.zone)
        domain.to_local(utc, official.zone)  # it must be writable back too, or it is a 500
        domain.to_wib(utc)
    except OverflowError:  # the first or last hours of year 1 / 9999
        raise DomainError("datetime_out_of_range", "Tanggal-waktu di luar rentang.",
                          "Date-time out of the supported range.",
                          field="purchased_at") from None
    return utc


def _seller(conn: sa.Connection, settings: CampaignSettings,
            data: dict[str, Any]) -> umkm_directory.KnownUmkm:
    """The seller the official named: by NIB (typed from the store page) or by id."""
    if data.get("nib") is None:
        return _registered_business(conn, settings, str(data["umkm_id"]))
    biz = umkm_directory.find_by_nib(conn, data["nib"])
    if biz is None or not biz.active:
        msg = ("Tidak ada UMKM terdaftar dengan NIB ini (belum terdaftar, atau sudah menarik "
               "diri dari program).", "No registered business has this NIB (never registered,"
               " or withdrawn from the programme).")
        raise DomainError("nib_not_registered", *msg, field="nib")
    return biz


def _registered_business(conn: sa.Connection, settings: CampaignSettings,
                         umkm_id: str) -> umkm_directory.KnownUmkm:
    """The business from our read model, or 409 so the caller retries after the event lands."""
    return umkm_directory.active(conn, umkm_id, settings.retry_after_seconds)


def _check_new_order(conn: sa.Connection, key: tuple[str, str]) -> None:
    taken = store.order_taken(conn, *key)
    try:
        domain.check_not_duplicate(key, {key} if taken else set())
    except domain.DomainError:
        raise _duplicate() from None


def _duplicate() -> DomainError:
    """Also what a parallel request gets when the unique constraint caught it."""
    return conflict("duplicate_order", "Nomor pesanan ini sudah dicatat.",
                    "This platform order reference was already recorded.")
