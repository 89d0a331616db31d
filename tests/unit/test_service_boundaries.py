"""No service imports another (issue 17, item 6): services talk over Kafka (the portal over
HTTP), and what two services share lives in services/common, which knows no service."""
from __future__ import annotations

import ast
from collections.abc import Callable

from services.common.config import REPO_ROOT
from services.common.validators import validate_nip

SERVICES = REPO_ROOT / "services"


def imported_services(source: str) -> set[str]:
    """The top-level packages under `services` that this module's source imports."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from services import training` names the package in the alias
            names = ([f"{node.module}.{a.name}" for a in node.names]
                     if node.module == "services" else [node.module])
        else:
            continue
        out |= {n.split(".")[1] for n in names if n.startswith("services.")}
    return out


def crossings() -> list[str]:
    """`path -> services.<other>` for every module that imports a service not its own."""
    found = []
    for path in sorted(SERVICES.glob("*/**/*.py")):
        owner = path.relative_to(SERVICES).parts[0]
        allowed = {owner} if owner == "common" else {owner, "common"}
        for other in sorted(imported_services(path.read_text(encoding="utf-8")) - allowed):
            found.append(f"{path.relative_to(REPO_ROOT)} -> services.{other}")
    return found


def test_no_service_imports_another_and_common_imports_none() -> None:
    assert crossings() == []


def test_the_check_sees_every_spelling_of_an_import() -> None:
    spelled = {
        "from services.registration.domain import validate_nip": {"registration"},
        "import services.metrics.store as s": {"metrics"},
        "from services import training": {"training"},
        "from services.common.validators import validate_nip": {"common"},
        "from . import domain": set(),
        "import sqlalchemy": set(),
    }
    for source, expected in spelled.items():
        assert imported_services(source) == expected, source


def _verdict(check: Callable[[str], str], nip: str) -> str:
    try:
        return "ok:" + check(nip)
    except Exception as e:  # RuleBroken, or the service's DomainError: both carry .code
        return str(getattr(e, "code", repr(e)))


def test_campaign_and_registration_read_a_nip_by_the_one_shared_rule() -> None:
    # Campaign reads NIPs through services/common (it may not import registration); the
    # registration service keeps its own entry point, which must answer exactly the same.
    from services.registration.domain import validate_nip as registration_rule

    samples = ["198001012005011001", "19800101 200501 1 001", "19800101200501100",
               "198013012005011001", "198001012005131001", "198001012005013001",
               "198001012005011000", "٣٩٨٠٠١٠١٢٠٠٥٠١١٠٠١", "", "21000101200501 1001"]
    for nip in samples:
        assert _verdict(registration_rule, nip) == _verdict(validate_nip, nip), nip
    assert {_verdict(validate_nip, n) for n in samples} >= {
        "ok:198001012005011001", "nip_invalid_format", "nip_invalid_birth_date",
        "nip_invalid_tmt", "nip_invalid_sex", "nip_invalid_serial"}
