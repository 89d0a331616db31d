"""The one DomainError, its rendering as problem details, and typed field messages."""
from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields

from services.common.config import Settings
from services.common.errors import DomainError, FieldMessage
from services.common.http.errors import field_errors, from_domain
from services.common.http.web import create_service_app
from services.common.validators import Pattern
from tests.integration.common_helpers import demo_md


def test_domain_error_carries_code_messages_kind_and_field() -> None:
    err = DomainError("x_bad", "Salah.", "Wrong.", field="x")
    assert (err.code, err.message_id, err.message_en) == ("x_bad", "Salah.", "Wrong.")
    assert (err.kind, err.status, err.field) == ("invalid", 422, "x")
    assert str(err) == "x_bad: Wrong."
    assert DomainError("y", "a", "b").field is None
    assert DomainError("y", "a", "b", "conflict").status == 409
    assert DomainError("y", "a", "b", "not_found").status == 404


def test_a_field_name_where_the_kind_goes_is_refused() -> None:
    with pytest.raises(ValueError, match="kind 'nik'"):
        DomainError("x", "a", "b", "nik")  # type: ignore[arg-type]


def test_with_extra_keeps_the_error_and_adds_body_members() -> None:
    err = DomainError("invalid_transition", "a", "b", "conflict", "status", shown=1)
    more = err.with_extra(current_status="verified")
    assert (more.code, more.kind, more.field) == ("invalid_transition", "conflict", "status")
    assert more.extra == {"shown": 1, "current_status": "verified"}
    assert err.extra == {"shown": 1}


def test_invalid_names_its_field_and_a_conflict_carries_no_field_errors() -> None:
    bad = from_domain(DomainError("amount_invalid", "Salah.", "Wrong.", field="amount_idr"))
    assert bad.status == 422
    assert bad.errors == {"amount_idr": [{"code": "amount_invalid", "message_id": "Salah.",
                                          "message_en": "Wrong."}]}
    whole = from_domain(DomainError("seller_required", "Salah.", "Wrong."))
    assert whole.errors is not None and list(whole.errors) == ["_"]
    clash = from_domain(DomainError("closed", "Tutup.", "Closed.", "conflict", "status",
                                    current_status="closed"))
    assert (clash.status, clash.errors) == (409, None)
    assert clash.to_problem()["current_status"] == "closed"


def test_an_error_naming_several_rows_renders_its_own_errors_map() -> None:
    row = FieldMessage("not_enrolled", "Tidak terdaftar.", "Not enrolled.")
    err = DomainError("attendance_invalid", "Dua salah.", "Two wrong.",
                      errors={"rows": {"2": [row], "5": [row, "Unknown field."]}})
    kept = err.with_extra(shown=1)
    assert kept.errors == err.errors and kept.extra == {"shown": 1}
    entry = {"code": "not_enrolled", "message_id": "Tidak terdaftar.",
             "message_en": "Not enrolled."}
    body = from_domain(kept).to_problem()
    assert (body["status"], body["code"], body["shown"]) == (422, "attendance_invalid", 1)
    assert body["errors"] == {"rows": {"2": [entry], "5": [
        entry, {"code": "unknown_field", "message_id": "Kolom tidak dikenal.",
                "message_en": "Unknown field."}]}}
    with pytest.raises(ValueError, match="carries no field errors"):
        DomainError("closed", "Tutup.", "Closed.", "conflict", errors={"x": [row]})


def test_field_message_is_a_string_that_survives_copy_and_pickle() -> None:
    msg = FieldMessage("code_invalid", "Kode salah.", "Bad code.")
    assert msg == "Bad code."
    for twin in (copy.deepcopy(msg), pickle.loads(pickle.dumps(msg))):
        assert isinstance(twin, FieldMessage) and twin.as_dict() == msg.as_dict()


class _Demo(Schema):
    code = fields.String(validate=Pattern(r"^[a-z]+$", error=FieldMessage(
        "code_invalid", "Huruf kecil saja.", "Lowercase letters only.")))
    n = fields.Integer()


def test_field_errors_reads_typed_messages_and_marshmallows_own() -> None:
    with pytest.raises(ValidationError) as info:
        _Demo().load({"code": "ABC", "n": "x", "extra": 1})
    errors = field_errors(info.value.messages)
    assert errors["code"] == [{"code": "code_invalid", "message_id": "Huruf kecil saja.",
                               "message_en": "Lowercase letters only."}]
    assert errors["n"][0]["code"] == "not_integer"
    assert errors["extra"][0]["code"] == "unknown_field"


def test_a_message_with_a_pipe_is_kept_whole() -> None:
    errors = field_errors({"rule": [FieldMessage("bar", "Ada | di sini.", "Has a | here.")],
                           "other": ["a|b|c"]})
    assert errors["rule"][0] == {"code": "bar", "message_id": "Ada | di sini.",
                                 "message_en": "Has a | here."}
    assert errors["other"][0] == {"code": "invalid", "message_id": "a|b|c",
                                  "message_en": "a|b|c"}


def test_the_app_renders_a_domain_error_and_a_typed_field_message(tmp_path: Path) -> None:
    settings = Settings.from_env("demo", database_url=f"sqlite:///{tmp_path/'d.db'}")
    app, api = create_service_app("demo", settings, demo_md, "Demo")
    blp = Blueprint("rules", __name__, url_prefix="/v1/rules")

    @blp.route("")
    class Rules(MethodView):
        @blp.arguments(_Demo)
        def post(self, body: dict[str, Any]) -> None:
            raise DomainError("campaign_closed", "Kampanye sudah ditutup.",
                              "The campaign is closed.", "conflict", "status")

    api.register_blueprint(blp)
    client = app.test_client()
    r = client.post("/v1/rules", json={"code": "abc"})
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["type"].endswith("/campaign-closed")
    assert body["detail"] == "Kampanye sudah ditutup. / The campaign is closed."
    assert "errors" not in body
    r = client.post("/v1/rules", json={"code": "A"})
    assert r.status_code == 422
    assert r.get_json()["errors"] == {"json": {"code": [
        {"code": "code_invalid", "message_id": "Huruf kecil saja.",
         "message_en": "Lowercase letters only."}]}}


def test_a_domain_error_that_may_succeed_later_is_answered_with_retry_after() -> None:
    from services.common.errors import DomainError
    from services.common.http.errors import from_domain

    err = DomainError("umkm_not_known_yet", "belum", "not yet", "conflict", retry_after=30)
    api = from_domain(err.with_extra(umkm="x"))
    assert (api.status, api.headers) == (409, {"Retry-After": "30"})
    assert from_domain(DomainError("c", "i", "e", "conflict")).headers in (None, {})
