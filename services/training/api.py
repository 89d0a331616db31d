"""HTTP endpoints of the training service: thin views over the handlers and queries."""
from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.common.http import ratelimit
from services.common.http.auth import current_principal, require_role
from services.common.http.errors import ApiError
from services.common.http.web import get_engine, get_settings
from services.training import domain, handlers, queries, schemas, store
from services.training.config import TrainingSettings, training_settings

blp = Blueprint("training", __name__, url_prefix="/v1",
                description="Pelatihan UMKM: kursus, webinar, pendaftaran, sertifikat / "
                            "UMKM training: courses, webinars, enrolment, certificates")
OPERATORS = ("operator", "admin")
SECURED: dict[str, Any] = {"security": [{"bearerAuth": []}]}
NOT_KNOWN = "umkm_not_known_yet (with Retry-After), umkm_withdrawn"
NOT_OWNER = "not_owner: the business is not the signed-in owner's"


def _owner() -> str:
    """The signed-in owner's account subject (a person, who may own several businesses)."""
    principal = current_principal()
    assert principal is not None  # require_role has already refused anonymous callers
    return principal.subject


def _one(args: dict[str, Any]) -> str | None:
    return str(args["umkm_id"]) if args.get("umkm_id") else None


def _settings() -> TrainingSettings:
    return training_settings(get_settings())


def _page(args: dict[str, Any]) -> tuple[int, int]:
    return min(args["limit"], get_settings().max_page_size), args["offset"]


@blp.route("/courses")
class Courses(MethodView):
    @blp.arguments(schemas.PageArgs, location="query")
    @blp.response(200, schemas.CourseOut(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Daftar kursus / list courses (public)."""
        return queries.list_courses(get_engine(), *_page(args))

    @require_role(*OPERATORS)
    @blp.arguments(schemas.CourseIn)
    @blp.response(201, schemas.CourseOut)
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any]) -> Any:
        """Buat kursus / create a course (operator)."""
        return handlers.create_course(get_engine(), _settings(), body)


@blp.route("/courses/<uuid:course_id>")
class CourseOne(MethodView):
    @blp.response(200, schemas.CourseOut)
    def get(self, course_id: uuid.UUID) -> Any:
        """Detail kursus / one course (public)."""
        return queries.get_course(get_engine(), str(course_id))

    @require_role(*OPERATORS)
    @blp.arguments(schemas.CoursePatch)
    @blp.response(200, schemas.CourseOut)
    @blp.doc(**SECURED)
    def patch(self, body: dict[str, Any], course_id: uuid.UUID) -> Any:
        """Ubah kursus / update a course (operator)."""
        return handlers.update_course(get_engine(), _settings(), str(course_id), body)


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.arguments(schemas.SessionArgs, location="query")
    @blp.response(200, schemas.SessionOut(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """Sesi mendatang dan kursi tersisa / upcoming sessions with seats left (public)."""
        cid = str(args["course_id"]) if args.get("course_id") else None
        return queries.list_sessions(get_engine(), cid, *_page(args))

    @require_role(*OPERATORS)
    @blp.arguments(schemas.SessionIn)
    @blp.response(201, schemas.SessionAdminOut)
    @blp.alt_response(422, description="starts_in_past, deadline_after_start")
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any]) -> Any:
        """Jadwalkan sesi / schedule a session (operator; times in WIB unless an offset is
        given)."""
        return handlers.create_session(get_engine(), _settings(), body)


@blp.route("/sessions/<uuid:session_id>")
class SessionOne(MethodView):
    @blp.response(200, schemas.SessionOut)
    def get(self, session_id: uuid.UUID) -> Any:
        """Detail sesi / one session (public)."""
        return queries.get_session(get_engine(), str(session_id))

    @require_role(*OPERATORS)
    @blp.arguments(schemas.SessionPatch)
    @blp.response(200, schemas.SessionAdminOut)
    @blp.alt_response(409, description="session_cancelled, session_past, "
                                       "capacity_below_enrolled")
    @blp.doc(**SECURED)
    def patch(self, body: dict[str, Any], session_id: uuid.UUID) -> Any:
        """Ubah sesi / update a session; more seats promote from the waitlist (operator)."""
        return handlers.update_session(get_engine(), _settings(), str(session_id), body)


@blp.route("/sessions/<uuid:session_id>/cancel")
class CancelSession(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, schemas.SessionAdminOut)
    @blp.alt_response(409, description="session_cancelled, session_past")
    @blp.doc(**SECURED)
    def post(self, session_id: uuid.UUID) -> Any:
        """Batalkan sesi / cancel a session; every seat holder is notified (operator)."""
        return handlers.cancel_session(get_engine(), _settings(), str(session_id))


@blp.route("/sessions/<uuid:session_id>/enrolments")
class Enrol(MethodView):
    @require_role("umkm")
    @blp.arguments(schemas.OneUmkmIn)
    @blp.response(201, schemas.EnrolmentOut, description="enrolled / mendapat kursi")
    @blp.alt_response(202, schema=schemas.EnrolmentOut, description="waitlisted / daftar tunggu")
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.alt_response(409, description="already_enrolled, enrolment_closed, session_cancelled, "
                                       "session_past, " + NOT_KNOWN)
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any], session_id: uuid.UUID) -> Any:
        """Daftar sesi / enrol one of my businesses in a session (UMKM): 201 enrolled or 202
        waitlisted."""
        view, status = handlers.enrol(get_engine(), _settings(), _owner(),
                                      str(body["umkm_id"]), str(session_id))
        return view, status  # 202 is dumped with the same schema


@blp.route("/sessions/<uuid:session_id>/enrolments/<uuid:umkm_id>")
class MyEnrolment(MethodView):
    @require_role("umkm")
    @blp.response(200, schemas.EnrolmentOut)
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.alt_response(409, description="not_enrolled, session_cancelled, session_past")
    @blp.doc(**SECURED)
    def delete(self, session_id: uuid.UUID, umkm_id: uuid.UUID) -> Any:
        """Batalkan pendaftaran / cancel my business's enrolment; the waitlist head is
        promoted (UMKM)."""
        return handlers.cancel_enrolment(get_engine(), _settings(), _owner(),
                                         str(umkm_id), str(session_id))


@blp.route("/sessions/<uuid:session_id>/attendance")
class Attendance(MethodView):
    @require_role(*OPERATORS)
    @blp.response(200, schemas.AttendanceOut)
    @blp.alt_response(409, description="session_cancelled, session_not_started")
    @blp.alt_response(422, description="attendance_invalid: errors.rows maps each bad row "
                                       "(CSV line number; JSON list index) to its errors")
    @blp.doc(**SECURED, requestBody={"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "string",
                                                                    "format": "uuid"}}},
        "text/csv": {"schema": {"type": "string", "example": "umkm_id\n<uuid>\n"}}}})
    def post(self, session_id: uuid.UUID) -> Any:
        """Catat kehadiran / record attendance: completes and certifies (operator)."""
        rows, errors = _attendance_rows()
        return handlers.record_attendance(get_engine(), _settings(), str(session_id),
                                          rows, errors)


def _attendance_rows() -> tuple[list[tuple[int, str]], list[domain.RowError]]:
    """A JSON list of ids (or {"umkm_ids": [...]}) or a CSV report with header umkm_id."""
    if request.mimetype == "text/csv":
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(422, "csv_not_utf8", "Berkas CSV harus UTF-8.",
                           "The CSV file must be UTF-8.") from None
        return domain.parse_attendance_csv(text)
    if request.mimetype == "application/json":
        doc = request.get_json(silent=True)
        if isinstance(doc, dict) and set(doc) == {"umkm_ids"}:
            doc = doc["umkm_ids"]
        if isinstance(doc, list) and doc:
            return [(i, str(x) if isinstance(x, str) else repr(x)) for i, x in enumerate(doc)], []
        raise ApiError(422, "attendance_invalid", "Kirim daftar JSON berisi id UMKM.",
                       "Send a non-empty JSON list of business ids.")
    raise ApiError(415, "unsupported_media_type", "Kirim application/json atau text/csv.",
                   "Send application/json or text/csv.")


@blp.route("/me/enrolments")
class MyEnrolments(MethodView):
    @require_role("umkm")
    @blp.arguments(schemas.MineArgs, location="query")
    @blp.response(200, schemas.EnrolmentOut(many=True))
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any]) -> Any:
        """Pendaftaran saya / the enrolments of my businesses, or of one (UMKM)."""
        return queries.mine(get_engine(), _owner(), _one(args), *_page(args), "enrolments")


@blp.route("/me/completions")
class MyCompletions(MethodView):
    @require_role("umkm")
    @blp.arguments(schemas.MineArgs, location="query")
    @blp.response(200, schemas.CompletionOut(many=True))
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any]) -> Any:
        """Pelatihan selesai dan sertifikat / completions and certificates of my businesses,
        or of one (UMKM)."""
        return queries.mine(get_engine(), _owner(), _one(args), *_page(args), "completions")


@blp.route("/me/courses/<uuid:course_id>/progress")
class MyProgress(MethodView):
    @require_role("umkm")
    @blp.arguments(schemas.OneUmkmArgs, location="query")
    @blp.response(200, schemas.ProgressOut)
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.doc(**SECURED)
    def get(self, args: dict[str, Any], course_id: uuid.UUID) -> Any:
        """Kemajuan belajar mandiri / my business's self-paced progress (UMKM)."""
        return queries.progress(get_engine(), _settings(), _owner(), str(args["umkm_id"]),
                                str(course_id))


@blp.route("/me/courses/<uuid:course_id>/modules/<module_key>/done")
class ModuleDone(MethodView):
    @require_role("umkm")
    @blp.arguments(schemas.OneUmkmIn)
    @blp.response(200, schemas.ProgressOut)
    @blp.alt_response(403, description=NOT_OWNER)
    @blp.alt_response(409, description=NOT_KNOWN)
    @blp.doc(**SECURED)
    def post(self, body: dict[str, Any], course_id: uuid.UUID, module_key: str) -> Any:
        """Modul selesai / mark a module done for my business; the last one issues a
        certificate (UMKM)."""
        return handlers.module_done(get_engine(), _settings(), _owner(),
                                    str(body["umkm_id"]), str(course_id), module_key)


@blp.route("/certificates/<number>")
class CertificateCheck(MethodView):
    @blp.response(200, schemas.CertificateCheckOut)
    @blp.alt_response(404, description="certificate_not_found")
    @blp.alt_response(429, description="rate_limited (Retry-After): "
                                       "TRAINING_CERTIFICATE_RATE_LIMIT per client and window")
    def get(self, number: str) -> Any:
        """Cek sertifikat / check a certificate by its number (public): the course, kind,
        completion time and the business's trade name."""
        settings = _settings()
        wait = ratelimit.hit(get_engine(), store.rate_limits, settings,
                             "certificate:" + (request.remote_addr or "unknown"),
                             settings.certificate_rate_limit, settings.rate_window_seconds)
        if wait is not None:
            raise ratelimit.too_many(
                wait, "Terlalu banyak pengecekan sertifikat dari alamat ini; coba lagi nanti.",
                "Too many certificate checks from this address; try again later.")
        return queries.certificate(get_engine(), number)
