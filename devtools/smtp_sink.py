"""A local SMTP sink for the development identity provider: Keycloak's mails (e-mail
verification, password reset) are written to files instead of being delivered, so sign-up
works end to end on a laptop and the tests can read the verification link.

    python -m devtools.smtp_sink --port 2525 --dir var/keycloak/mail

Each message becomes <dir>/<time>-<n>.eml. Loopback only; nothing is ever relayed.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

_counter = itertools.count()


class _Handler:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        name = f"{time.time_ns()}-{next(_counter)}.eml"
        tmp = self.out_dir / (name + ".part")
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.out_dir / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def serve(port: int, out_dir: Path) -> None:
    """Run until SIGTERM/SIGINT."""
    from aiosmtpd.controller import Controller

    out_dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Handler(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"smtp sink on 127.0.0.1:{port}, mails in {out_dir}", flush=True)
    stop.wait()
    controller.stop()


def messages(out_dir: Path) -> list[email.message.EmailMessage]:
    """Every mail received so far, oldest first."""
    out = []
    for path in sorted(out_dir.glob("*.eml"), key=lambda p: int(p.name.split("-")[0])):
        out.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
    return out  # type: ignore[return-value]


def text_of(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def verification_link(out_dir: Path, to: str) -> str | None:
    """The newest e-mail-verification link Keycloak sent to `to`, if any."""
    for msg in reversed(messages(out_dir)):
        if to.lower() in str(msg.get("To", "")).lower():
            m = re.search(r"https?://\S+/login-actions/action-token\?[^\s\"<>]+", text_of(msg))
            if m:
                return m.group(0).replace("&amp;", "&")
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", type=Path, required=True)
    args = p.parse_args()
    serve(args.port, args.dir)


if __name__ == "__main__":
    main()
