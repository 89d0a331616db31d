"""Each service's OpenAPI document describes its errors as they are answered: problem details
(application/problem+json, a string `code`), and 401/403 on every bearer-protected operation."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.security.apps import SERVICES, build


@pytest.mark.parametrize("service", SERVICES)
def test_error_responses_are_problem_details(service: str, tmp_path: Path) -> None:
    app, _ = build(service, f"sqlite:///{tmp_path / 'db.sqlite'}")
    doc = app.test_client().get("/openapi.json").get_json()
    problem = doc["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"]["type"] == "string"
    assert "Error" not in doc["components"]["schemas"]  # flask-smorest's shape is not ours
    for name, resp in doc["components"]["responses"].items():
        assert set(resp.get("content", {})) <= {"application/problem+json"}, name
    secured = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if op.get("security"):
                secured += 1
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            for status, resp in op["responses"].items():
                if status.isdigit() and int(status) >= 400 and "$ref" not in resp:
                    assert "application/problem+json" in resp.get("content", {}), \
                        (method, path, status)
    assert secured > 0 or service == "metrics"
