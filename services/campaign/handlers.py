"""Use cases of the campaign service, each one unit of work (state + outbox events)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.campaign import config, domain
from services.campaign.identity import Official
from services.campaign.store import (
    add_spend,
    campaign_umkm,
    campaigns,
    get_campaign,
    get_participant,
    insert_ignore,
    metadata,
    participants,
    purchases,
    totals,
)
from services.common import contracts, umkm_directory
from services.common.config import Settings
from services.common.db import is_unique_violation, new_id, utcnow
from services.common.errors import ApiError, field_error, not_found
from services.common.uow import UnitOfWork

SOURCE = "campaign"
# Rules whose breach is a clash with the current state (409) rather than bad input (422).
_CONFLICTS = {"campaign_not_open", "campaign_closed", "duplicate_order", "invalid_transition"}


def uow(engine: Engine, settings: Settings) -> UnitOfWork:
    return UnitOfWork(engine, metadata, SOURCE, settings.topic_prefix)


@contextmanager
def rules() -> Iterator[None]:
    """Turn a broken domain rule into a problem-details answer."""
    try:
        yield
    except domain.DomainError as e:
        if e.code in _CONFLICTS:
            raise ApiError(409, e.code, e.message_id, e.message_en) from None
        errors = {e.field: [field_error(e.code, e.message_id, e.message_en)]}
        raise ApiError(422, e.code, e.message_id, e.message_en, errors=errors) from None


def campaign_or_404(conn: sa.Connection, code: str, lock: bool = False) -> Any:
    row = get_campaign(conn, code, lock)
    if row is None:
        raise not_found("campaign")
    return row


def _band(row: Any) -> domain.Band:
    return domain.Band(row.band_min_idr, row.band_max_idr)


def create_campaign(engine: Engine, settings: Settings, data: dict[str, Any]) -> dict[str, Any]:
    """An operator schedules a buying day (times typed in WIB, stored UTC)."""
    starts, ends = domain.to_utc(data["starts_at"]), domain.to_utc(data["ends_at"])
    with rules():
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
            u.conn.execute(campaigns.insert().values(**row))
            u.publish(contracts.CAMPAIGN_CREATED, {k: row[k] for k in (
                "code", "starts_at", "ends_at", "band_min_idr", "band_max_idr")}
                | {"campaign_id": row["id"]})
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise ApiError(409, "code_taken", "Kode kampanye sudah dipakai.",
                       "This campaign code is already taken.") from None
    return row


def transition(engine: Engine, settings: Settings, code: str, action: str) -> dict[str, Any]:
    """Open or close a campaign; closing publishes the final totals."""
    with uow(engine, settings) as u:
        c = campaign_or_404(u.conn, code, lock=True)
        with rules():
            status = domain.check_transition(c.status, action)
        stamp = {"open": "opened_at", "close": "closed_at"}[action]
        u.conn.execute(campaigns.update().where(campaigns.c.id == c.id)
                       .values(status=status, **{stamp: utcnow()}))
        base = {"campaign_id": c.id, "code": c.code}
        if action == "open":
            u.publish(contracts.CAMPAIGN_OPENED, base)
        else:
            u.publish(contracts.CAMPAIGN_CLOSED, base | totals(u.conn, c.id))
        return dict(campaign_or_404(u.conn, code)._mapping)


def list_campaigns(engine: Engine, limit: int, offset: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(campaigns).order_by(campaigns.c.starts_at.desc(),
                                                          campaigns.c.code)
                            .limit(limit).offset(offset)).all()
    return [dict(r._mapping) for r in rows]


def get(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(campaign_or_404(conn, code)._mapping)


def join(engine: Engine, settings: Settings, official: Official, code: str) -> dict[str, Any]:
    """An eligible official joins (once) before or during the buying day."""
    try:
        with uow(engine, settings) as u:
            c = campaign_or_404(u.conn, code)
            with rules():
                domain.check_can_join(c.status)
                domain.check_eligible(official.agency, official.region, c.eligible_agencies,
                                      c.eligible_regions)
            if get_participant(u.conn, c.id, official.official_id) is not None:
                raise _already_joined()
            u.conn.execute(participants.insert().values(
                campaign_id=c.id, official_id=official.official_id, agency=official.agency,
                region=official.region, spent_idr=0, joined_at=utcnow()))
            u.publish(contracts.CAMPAIGN_JOINED, {"campaign_id": c.id, "code": c.code,
                                                  "official_id": official.official_id,
                                                  "agency": official.agency})
    except sa.exc.IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise _already_joined() from None
    return {"code": c.code, "official_id": official.official_id, "agency": official.agency,
            "region": official.region} | domain.progress(0, _band(c))


def _already_joined() -> ApiError:
    return ApiError(409, "already_joined", "Anda sudah bergabung dengan kampanye ini.",
                    "You have already joined this campaign.")


def record_purchase(engine: Engine, settings: Settings, official: Official, code: str,
                    data: dict[str, Any]) -> dict[str, Any]:
    """An official records one online purchase from a registered UMKM."""
    now = utcnow()
    purchased_at = domain.to_utc(data["purchased_at"])
    key = domain.order_key(data["platform"], data["order_ref"])
    with rules():
        amount = domain.check_amount(data["amount_idr"], config.max_purchase_idr())
    try:
        with uow(engine, settings) as u:
            c = campaign_or_404(u.conn, code)
            with rules():
                domain.check_purchase_time(c.status, purchased_at, c.starts_at, c.ends_at, now,
                                           timedelta(seconds=config.clock_skew_seconds()))
            p = get_participant(u.conn, c.id, official.official_id)
            if p is None:
                raise ApiError(409, "not_joined", "Bergabunglah dengan kampanye terlebih dulu.",
                               "Join the campaign first.")
            biz = _registered_business(u.conn, str(data["umkm_id"]))
            _check_new_order(u.conn, key)
            with rules():
                domain.check_band(p.spent_idr, amount, _band(c))
                # The atomic UPDATE is the real guard: a parallel purchase may have landed.
                if not add_spend(u.conn, c.id, official.official_id, amount, c.band_max_idr):
                    domain.check_band(c.band_max_idr, amount, _band(c))
            row = {"id": new_id(), "campaign_id": c.id, "official_id": official.official_id,
                   "agency": official.agency, "umkm_id": str(data["umkm_id"]),
                   "province_code": biz.province_code, "platform": data["platform"],
                   "order_ref": data["order_ref"].strip(), "order_key": key[1],
                   "amount_idr": amount, "purchased_at": purchased_at, "recorded_at": now}
            u.conn.execute(purchases.insert().values(**row))
            insert_ignore(u.conn, campaign_umkm, {"id": new_id(), "campaign_id": c.id,
                                                  "umkm_id": row["umkm_id"],
                                                  "province_code": biz.province_code})
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
    return row


def _registered_business(conn: sa.Connection, umkm_id: str) -> umkm_directory.KnownUmkm:
    """The business from our read model, or 409 so the caller retries after the event lands."""
    biz = umkm_directory.find(conn, umkm_id)
    if biz is None:
        raise ApiError(409, "umkm_not_known_yet",
                       "UMKM belum terdaftar di sistem kami; coba lagi sebentar.",
                       "This business is not known (yet); retry shortly.",
                       headers={"Retry-After": str(config.retry_after_seconds())})
    if not biz.active:
        raise ApiError(409, "umkm_withdrawn", "UMKM ini telah menarik diri dari program.",
                       "This business has withdrawn from the programme.")
    return biz


def _check_new_order(conn: sa.Connection, key: tuple[str, str]) -> None:
    hit = conn.execute(sa.select(purchases.c.id).where(
        purchases.c.platform == key[0], purchases.c.order_key == key[1])).first()
    try:
        domain.check_not_duplicate(key, {key} if hit else set())
    except domain.DomainError:
        raise _duplicate() from None


def _duplicate() -> ApiError:
    """Also what a parallel request gets when the unique constraint caught it."""
    return ApiError(409, "duplicate_order", "Nomor pesanan ini sudah dicatat.",
                    "This platform order reference was already recorded.")


def my_purchases(engine: Engine, official: Official, code: str, limit: int,
                 offset: int) -> dict[str, Any]:
    """An official's own purchases in a campaign and their progress against the band."""
    with engine.connect() as conn:
        c = campaign_or_404(conn, code)
        p = get_participant(conn, c.id, official.official_id)
        if p is None:
            raise ApiError(404, "not_joined", "Anda belum bergabung dengan kampanye ini.",
                           "You have not joined this campaign.")
        rows = conn.execute(sa.select(purchases).where(
            purchases.c.campaign_id == c.id, purchases.c.official_id == official.official_id)
            .order_by(purchases.c.purchased_at, purchases.c.id).limit(limit).offset(offset)).all()
        n = conn.execute(sa.select(sa.func.count()).select_from(purchases).where(
            purchases.c.campaign_id == c.id,
            purchases.c.official_id == official.official_id)).scalar_one()
    return {"code": c.code, "official_id": official.official_id, "agency": p.agency,
            "progress": domain.progress(p.spent_idr, _band(c)), "total": n,
            "purchases": [dict(r._mapping) for r in rows]}
