"""Schemathesis against a service's own OpenAPI document, in-process over WSGI.

Each operation is called with the token of a role it accepts (found by probing: the auth
check runs before validation, so a role that is refused answers 403 whatever the body),
with schema-conforming (positive) and schema-violating (negative) cases. Every response must
be a non-5xx, with a documented status, content type, headers and body.

schemathesis's negative_data_rejection check is not used: it counts an unknown query
parameter as invalid data, and the services ignore those on purpose (flask-smorest's
default for the query location), so it would only report that policy."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_headers_conformance, response_schema_conformance]


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)      # per operation label
    statuses: Counter[int] = field(default_factory=Counter)
    roles: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.cases.values())


def _role_for(op: Any, tokens: dict[str, dict[str, str]]) -> str:
    """The role (in the given order: least privileged first) refused least often."""
    cases = _examples(op.as_strategy(GenerationMode.POSITIVE), 8)
    refused = {role: sum(_with(c, h).call().status_code in (401, 403) for c in cases)
               for role, h in tokens.items()}
    return min(tokens, key=lambda role: refused[role])  # min keeps the first of equals


def _with(case: Any, headers: dict[str, str]) -> Any:
    case.headers = {k: v for k, v in (case.headers or {}).items()
                    if k.lower() != "authorization"} | headers
    return case


def _examples(strategy: Any, n: int) -> list[Any]:
    found: list[Any] = []

    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def take(case: Any) -> None:
        found.append(case)

    take()
    return found


def fuzz_app(app: Flask, tokens: dict[str, dict[str, str]], target: int,
             examples: int = 40, max_rounds: int = 30) -> FuzzReport:
    """Positive and negative cases over every operation until `target` cases have run.

    Each round gives every operation `examples` cases of each mode; an operation with little
    to vary (no parameters) runs out early and is left out of the next rounds."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    report = FuzzReport()
    for op in ops:
        report.roles[op.label] = _role_for(op, tokens)
    live = {(op.label, mode): op for op in ops
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)}
    for _ in range(max_rounds):
        if report.total >= target or not live:
            break
        for (label, mode), op in list(live.items()):
            ran = _run(op, mode, tokens[report.roles[label]], CONFORMANCE, examples, report)
            if ran < examples:
                del live[(label, mode)]
    return report


def _run(op: Any, mode: GenerationMode, headers: dict[str, str], checks: list[Any],
         examples: int, report: FuzzReport) -> int:
    """One hypothesis run; returns how many cases it made."""
    ran = 0

    @settings(max_examples=examples, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(op.as_strategy(mode))
    def one(case: Any) -> None:
        nonlocal ran
        ran += 1
        report.cases[op.label] += 1
        response = _with(case, headers).call()  # our token, not a generated Authorization
        report.statuses[response.status_code] += 1
        case.validate_response(response, checks=checks)

    try:
        one()
    except Unsatisfiable:
        pass  # nothing to violate: an operation without parameters or body has no negatives
    except (Exception, BaseExceptionGroup) as exc:  # collect every failure, fail once at the end
        parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
        for part in parts:
            report.failures.append(f"{op.label} [{mode.value}]: {part}"[:3000])
        return 0  # a failing operation is not run again
    return ran
