"""Pattern: the whole value must match, ASCII digits only (marshmallow's Regexp does neither)."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from services.common.validators import Pattern
from services.registration.schemas import RegistrationIn


@pytest.mark.parametrize("value", ["3171\n", "3171\n\n", "٣١٧١", "31711", " 3171", 3171, None])
def test_pattern_refuses_what_regexp_let_through(value: object) -> None:
    with pytest.raises(ValidationError):
        Pattern(r"^\d{4}$", error="regency_invalid")(value)


def test_pattern_accepts_a_plain_match() -> None:
    assert Pattern(r"^\d{4}$")("3171") == "3171"


def test_registration_refuses_a_regency_code_with_a_trailing_newline() -> None:
    errors = RegistrationIn().validate({"regency_code": "3171\n"})
    assert "regency_code" in errors
    assert "regency_code" not in RegistrationIn().validate({"regency_code": "3171"})
