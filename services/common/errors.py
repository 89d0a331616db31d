"""The one error a broken rule raises anywhere in the system, and the typed message a field
validator hands to marshmallow. Pure (no web framework): domain modules import it, and
services/common/http renders it as RFC 9457 problem details."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Kind = Literal["invalid", "conflict", "not_found", "forbidden"]
# What each kind answers over HTTP: bad input, a clash with the current state, an absent
# resource, a caller who may not do this.
STATUS: Final[dict[str, int]] = {"invalid": 422, "conflict": 409, "not_found": 404,
                                 "forbidden": 403}


class DomainError(Exception):
    """A rule was broken: a machine code, messages in Indonesian and English, a kind, the
    field concerned (if one is), and any extra members for the problem body.

    `errors` is for bad input that names several fields or rows at once: {name: [FieldMessage,
    ...]}, nested as the input is (e.g. {"rows": {"3": [...]}}); it replaces the one entry
    `field` would give. `retry_after` (seconds) says the same request may succeed later (a
    read model that has not seen an event yet); it is answered as a Retry-After header."""

    def __init__(self, code: str, message_id: str, message_en: str, kind: Kind = "invalid",
                 field: str | None = None, *, errors: Mapping[str, Any] | None = None,
                 retry_after: int | None = None, **extra: Any) -> None:
        if kind not in STATUS:  # a field name passed where the kind goes, say
            raise ValueError(f"unknown DomainError kind {kind!r}")
        if errors is not None and kind != "invalid":  # only bad input is answered per field
            raise ValueError(f"a {kind} DomainError carries no field errors")
        super().__init__(f"{code}: {message_en}")
        self.code, self.message_id, self.message_en = code, message_id, message_en
        self.kind: Kind = kind
        self.field = field
        self.errors: dict[str, Any] | None = None if errors is None else dict(errors)
        self.retry_after = retry_after
        self.extra: dict[str, Any] = extra

    @property
    def status(self) -> int:
        return STATUS[self.kind]

    def with_extra(self, **extra: Any) -> DomainError:
        """The same error with more members for the body (e.g. the current state of a row)."""
        return DomainError(self.code, self.message_id, self.message_en, self.kind, self.field,
                           errors=self.errors, retry_after=self.retry_after,
                           **(self.extra | extra))

    def as_field_message(self) -> FieldMessage:
        return FieldMessage(self.code, self.message_id, self.message_en)


class FieldMessage(str):
    """One field's error, as the message of a marshmallow ValidationError.

    It is a str (the English text) so marshmallow, webargs and flask-smorest carry it like
    their own messages; the problem renderer reads its code and Indonesian text from the
    attributes, so nothing is ever encoded into, or parsed back out of, the string."""

    code: str
    message_id: str
    message_en: str

    def __new__(cls, code: str, message_id: str, message_en: str) -> FieldMessage:
        self = super().__new__(cls, message_en)
        self.code, self.message_id, self.message_en = code, message_id, message_en
        return self

    def __getnewargs__(self) -> tuple[str, str, str]:  # type: ignore[override]
        return self.code, self.message_id, self.message_en  # copy/pickle rebuild it whole

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message_id": self.message_id, "message_en": self.message_en}
