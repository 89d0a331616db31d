"""The nginx generated from deploy/k8s's Ingress objects, run for real in front of echo
upstreams: every manifest path reaches its Service's upstream (element-wise Prefix matching),
unrouted paths (/metrics, /healthz) get 404, each Ingress's body limit holds, and the client's
X-Forwarded-For is replaced by the address nginx saw (ingress-nginx's default)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools import ingress_nginx
from devtools.local_kafka import free_port
from tests.prodlike.conftest import need


def _echo(name: str) -> ThreadingHTTPServer:
    class Echo(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            body = json.dumps({"upstream": name, "path": self.path, "body_bytes": n,
                               "xff": self.headers.get("X-Forwarded-For"),
                               "host": self.headers.get("Host")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def ingress(tmp_path: Path) -> Iterator[tuple[ingress_nginx.LocalNginx, list[Any]]]:
    ingresses = ingress_nginx.load_ingresses()
    services = sorted({r.service for r in ingress_nginx.routes(ingresses)})
    echoes = {s: _echo(s) for s in services}
    nginx = need("nginx", lambda: ingress_nginx.start(
        {s: e.server_address[1] for s, e in echoes.items()}, free_port(), tmp_path / "nginx",
        ingresses))
    try:
        yield nginx, ingresses
    finally:
        nginx.stop()
        for e in echoes.values():
            e.shutdown()


def _size_bytes(v: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(v[:-1]) * units[v[-1].lower()] if v[-1].lower() in units else int(v)


def test_every_ingress_path_routes_limits_and_forwarding_as_declared(ingress: Any) -> None:
    nginx, ingresses = ingress
    routes = ingress_nginx.routes(ingresses)
    assert routes, "no Ingress found in deploy/k8s/base"
    with httpx.Client(base_url=nginx.url, timeout=30) as http:
        for r in routes:
            host = {"Host": r.host}
            for path in (r.path, r.path.rstrip("/") + "/x/1"):
                got = http.get(path, headers=host)
                assert got.status_code == 200, (r, path, got.text)
                assert got.json()["upstream"] == r.service and got.json()["path"] == path
            if r.path_type == "Prefix" and r.path != "/":  # /v1/me must not take /v1/mezz
                sibling = r.path.rstrip("/") + "zz"
                _expect_route(http, routes, r.host, sibling)
            # A forged X-Forwarded-For from outside is replaced by the address nginx saw.
            got = http.get(r.path, headers=host | {"X-Forwarded-For": "203.0.113.9"}).json()
            assert got["xff"] == "127.0.0.1" and got["host"] == r.host
            limit = _size_bytes(r.setting("proxy-body-size"))
            ok = http.post(r.path, headers=host, content=b"x" * (limit - 1024))
            assert ok.status_code == 200 and ok.json()["body_bytes"] == limit - 1024, r
            assert http.post(r.path, headers=host,
                             content=b"x" * (limit + 1024)).status_code == 413, r
        for host in {r.host for r in routes}:
            for internal in ("/metrics", "/healthz", "/readyz", "/", "/v1/unknown"):
                _expect_route(http, routes, host, internal)


def _expect_route(http: httpx.Client, routes: list[Any], host: str, path: str) -> None:
    """What Kubernetes' matching says: the longest matching route's upstream, else 404 (e.g.
    /metrics on the API host, which the Ingress deliberately does not route)."""
    got = http.get(path, headers={"Host": host})
    want = ingress_nginx.route_for(routes, host, path)
    if want is None:
        assert got.status_code == 404, (host, path, got.text)
    else:
        assert got.status_code == 200 and got.json()["upstream"] == want.service, (host, path)


def test_an_annotation_the_generator_cannot_reproduce_fails_loudly() -> None:
    ing = ingress_nginx.load_ingresses()[0]
    bad = dict(ing, metadata=dict(ing["metadata"], annotations={
        "nginx.ingress.kubernetes.io/rewrite-target": "/"}))
    with pytest.raises(ingress_nginx.UnsupportedIngress, match="rewrite-target"):
        ingress_nginx.routes([bad])
