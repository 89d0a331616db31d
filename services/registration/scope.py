"""Who may see or act on a business: its owner (by account subject), and staff by province.

Province scope of an operator: a regional government's staff (or a "pengasuh") see, export
and act only on businesses of their province; national staff (no scope) see all.

The token's `province_scope` claim (services/common/http/auth.py, mapped from the Keycloak user
attribute) holds one Kemendagri province code, or a list of them. A claim that is present
but unusable (empty, not a code) fails closed: it matches no business, never all of them.
Out of scope, one business answers 404 (its existence is not revealed); a list or export
filtered on another province answers 403 `province_out_of_scope`."""
from __future__ import annotations

from typing import Any

from services.common.errors import DomainError
from services.common.http.auth import NO_PROVINCE, Principal
from services.common.http.errors import not_found

NOTHING = NO_PROVINCE


def of(principal: Any) -> frozenset[str] | None:
    """The provinces this caller may see, or None for national staff."""
    return principal.province_scope if isinstance(principal, Principal) else None


def detail(scope: frozenset[str] | None) -> str | None:
    """The scope as an audit detail value ("31" or "31,32"); None when national."""
    return None if scope is None else ",".join(sorted(scope))


def check_filter(scope: frozenset[str] | None, province_code: str | None) -> None:
    """A list/export asking for a province outside the scope is refused, not emptied."""
    if scope is not None and province_code and province_code not in scope:
        raise DomainError("province_out_of_scope",
                          "Provinsi ini di luar cakupan wilayah Anda.",
                          "This province is outside your scope.", "forbidden")


def check_owner(row: Any, owner: str | None) -> None:
    """An owner (`owner`: the caller's subject; None for staff) acts on their own only."""
    if owner is not None and row.owner_subject != owner:
        raise DomainError("not_owner", "UMKM ini bukan milik akun Anda.",
                          "This business does not belong to your account.", "forbidden")


def check_row(scope: frozenset[str] | None, row: Any) -> None:
    """One business outside the scope is, for this caller, not there."""
    if scope is not None and row.province_code not in scope:
        raise not_found("umkm")
