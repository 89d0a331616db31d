"""Field validators shared by the request schemas and the event contracts."""
from __future__ import annotations

import re
from typing import Any, cast

from marshmallow import validate


class Pattern(validate.Regexp):
    """A regular expression the WHOLE value must match, with ASCII character classes.

    marshmallow's Regexp uses `re.match`, so `^[0-9]{4}$` also accepts "3171\\n" (`$` matches
    before a final newline) and `\\d` accepts any Unicode digit ("٣١٧١"). The pattern in the
    OpenAPI document stays the portable `^...$` form."""

    def __init__(self, regex: str, error: str | None = None) -> None:
        super().__init__(regex, flags=re.ASCII, error=error)

    def __call__(self, value: Any) -> Any:
        regex = cast("re.Pattern[str]", self.regex)  # marshmallow types it loosely
        if not isinstance(value, str) or regex.fullmatch(value) is None:
            raise validate.ValidationError(self._format_error(value))
        return value
