"""Request/response schemas of the training API (also its OpenAPI document)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from services.common.errors import FieldMessage
from services.common.validators import Pattern
from services.common.wib import WibDateTime

LEVELS = ("dasar", "menengah", "lanjutan")  # beginner, intermediate, advanced



class _In(Schema):
    class Meta:
        unknown = "raise"


class Module(_In):
    key = fields.String(required=True, validate=Pattern(
        r"^[a-z0-9][a-z0-9-]{0,39}$", error=FieldMessage(
            "module_key_invalid", "Kunci modul: huruf kecil, angka dan '-' (1-40).",
            "Module key: lowercase letters, digits and '-' (1-40).")))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CourseIn(_In):
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    modules = fields.List(fields.Nested(Module), required=True,
                          validate=validate.Length(min=1, max=100))

    @validates("modules")
    def _unique_keys(self, value: list[dict[str, str]], **_: Any) -> None:
        # Items that failed their own validation may reach here without a key.
        keys = [m["key"] for m in value if isinstance(m, dict) and "key" in m]
        if len(keys) != len(set(keys)):
            raise ValidationError(FieldMessage("module_key_duplicate", "Kunci modul harus unik.",
                                               "Module keys must be unique."))


class CoursePatch(CourseIn):
    """Any subset of a course's fields; `modules` replaces the whole list."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(partial=True, **kw)


class CourseOut(Schema):
    id = fields.String()
    title = fields.String()
    description = fields.String()
    level = fields.String()
    modules = fields.List(fields.Nested(Module))
    created_at = WibDateTime()
    updated_at = WibDateTime()


class SessionIn(_In):
    course_id = fields.UUID(required=True)
    starts_at = WibDateTime(required=True, metadata={"example": "2026-12-01T10:00:00"})
    duration_minutes = fields.Integer(required=True, strict=True,
                                      validate=validate.Range(min=15, max=600))
    capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000),
                              metadata={"description": "default 200"})
    join_link = fields.Url(required=True, schemes={"https"}, validate=validate.Length(max=500))
    enrolment_deadline = WibDateTime(metadata={"description": "default: the start time"})


class SessionPatch(_In):
    starts_at = WibDateTime()
    duration_minutes = fields.Integer(strict=True, validate=validate.Range(min=15, max=600))
    capacity = fields.Integer(strict=True, validate=validate.Range(min=1, max=100_000))
    join_link = fields.Url(schemes={"https"}, validate=validate.Length(max=500))
    enrolment_deadline = WibDateTime()


class SessionOut(Schema):
    id = fields.String()
    course_id = fields.String()
    starts_at = WibDateTime()
    duration_minutes = fields.Integer()
    capacity = fields.Integer()
    enrolment_deadline = WibDateTime()
    status = fields.String()
    enrolled = fields.Integer()
    waitlisted = fields.Integer()
    seats_left = fields.Integer()


class SessionAdminOut(SessionOut):
    join_link = fields.String()


class SessionArgs(_In):
    course_id = fields.UUID()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class PageArgs(_In):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class OneUmkmIn(_In):
    """Names the business (one of the signed-in owner's) an owner's action is for."""

    umkm_id = fields.UUID(required=True, metadata={"description": "the business (yours)"})


class OneUmkmArgs(OneUmkmIn):
    pass


class MineArgs(PageArgs):
    umkm_id = fields.UUID(metadata={"description": "one of your businesses (default: all)"})


class EnrolmentOut(Schema):
    session_id = fields.String()
    course_id = fields.String()
    umkm_id = fields.String()
    state = fields.String(metadata={"enum": ["enrolled", "waitlisted", "cancelled",
                                             "attended"]})
    position = fields.Integer(allow_none=True, metadata={"description": "waitlist place"})
    starts_at = WibDateTime()
    duration_minutes = fields.Integer()
    session_status = fields.String()
    join_link = fields.String(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    enrolled_at = WibDateTime()
    updated_at = WibDateTime()


class CompletionOut(Schema):
    umkm_id = fields.String()
    course_id = fields.String()
    key_id = fields.String(metadata={"description": "session id (webinar) or course id"})
    kind = fields.String()
    certificate_number = fields.String()
    completed_at = WibDateTime()


class ProgressOut(Schema):
    course_id = fields.String()
    modules_total = fields.Integer()
    modules_done = fields.List(fields.String())
    completed = fields.Boolean()
    certificate_number = fields.String(allow_none=True)


class Certificate(Schema):
    umkm_id = fields.String()
    certificate_number = fields.String()


class CertificateCheckOut(Schema):
    """What the public certificate check shows: no id, nothing about the owner."""

    certificate_number = fields.String(metadata={"example": "BBI-W-2026-7F3A9C21D0"})
    course_title = fields.String()
    kind = fields.String(metadata={"description": "webinar or elearning"})
    completed_at = WibDateTime()
    trade_name = fields.String(allow_none=True, metadata={
        "description": "the business's trade name; null once it has withdrawn"})


class AttendanceOut(Schema):
    session_id = fields.String()
    recorded = fields.Integer()
    already_recorded = fields.Integer()
    certificates = fields.List(fields.Nested(Certificate))
