"""The Ingress of deploy/k8s as a real nginx on loopback: the config is generated from the
Ingress manifests themselves (hosts, paths and path types, backends, the ingress-nginx
annotations for body size and timeouts, and ingress-nginx's X-Forwarded-For behaviour), so the
prodlike stack runs what production declares and cannot drift from it. An annotation this
generator does not know fails loudly instead of being dropped.

X-Forwarded-For: ingress-nginx's default (`use-forwarded-headers: false`) ignores the
client's X-Forwarded-* headers and sends the address it saw. Our services trust exactly one
proxy hop (the ingress), so the rate limit keys on the real client and a forged header sent
from outside is never believed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
K8S_BASE = REPO_ROOT / "deploy" / "k8s" / "base"
A = "nginx.ingress.kubernetes.io/"
# ingress-nginx's own defaults, used where an Ingress sets no annotation.
DEFAULTS = {"proxy-body-size": "1m", "proxy-connect-timeout": "5", "proxy-read-timeout": "60",
            "proxy-send-timeout": "60"}
# Annotations about TLS and certificates: loopback has no certificate, so HTTP only.
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
IGNORED = {A + "ssl-redirect", A + "force-ssl-redirect", "cert-manager.io/cluster-issuer"}


class UnsupportedIngress(ValueError):
    """The manifests use something this generator cannot reproduce faithfully."""


@dataclass(frozen=True)
class Route:
    host: str
    path: str
    path_type: str
    service: str
    settings: tuple[tuple[str, str], ...]  # (annotation without prefix, value)

    def setting(self, name: str) -> str:
        return dict(self.settings).get(name, DEFAULTS[name])


def load_ingresses(k8s_dir: Path = K8S_BASE) -> list[dict[str, Any]]:
    """Every Ingress object in the base manifests."""
    out = []
    for f in sorted(k8s_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Ingress":
                out.append(doc)
    return out


def routes(ingresses: Iterable[Mapping[str, Any]]) -> list[Route]:
    out = []
    for ing in ingresses:
        notes = dict(ing.get("metadata", {}).get("annotations") or {})
        settings = []
        for key, value in sorted(notes.items()):
            if key in IGNORED or not key.startswith(A) and not key.startswith("nginx."):
                continue
            name = key.removeprefix(A)
            if name not in DEFAULTS:
                raise UnsupportedIngress(f"{ing['metadata']['name']}: annotation {key} is not "
                                         "reproduced by devtools/ingress_nginx.py; add it there")
            settings.append((name, str(value)))
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                svc = p["backend"]["service"]
                if svc["port"].get("name", "http") != "http":
                    raise UnsupportedIngress(f"backend port {svc['port']} (only 'http')")
                out.append(Route(rule.get("host", "_"), p["path"], p["pathType"], svc["name"],
                                 tuple(settings)))
    return out


def route_for(routes: Iterable[Route], host: str, path: str) -> Route | None:
    """The route Kubernetes picks for a request: the longest matching path of its host."""
    def matches(r: Route) -> bool:
        base = r.path.rstrip("/")
        if r.path_type == "Exact":
            return path == r.path
        return not base or path == base or path.startswith(base + "/")
    found = [r for r in routes if r.host == host and matches(r)]
    return max(found, key=lambda r: (r.path_type == "Exact", len(r.path)), default=None)


def _locations(r: Route) -> list[str]:
    """Kubernetes path semantics in nginx: Prefix matches whole path elements (/v1/me is
    /v1/me and /v1/me/..., never /v1/menu)."""
    if r.path_type == "Exact":
        return [f"= {r.path}"]
    if r.path_type not in ("Prefix", "ImplementationSpecific"):
        raise UnsupportedIngress(f"pathType {r.path_type}")
    base = r.path.rstrip("/")
    return [f"= {base}", f"{base}/"] if base else ["/"]


def render(ingresses: Iterable[Mapping[str, Any]], upstreams: Mapping[str, int], listen: int,
           workdir: Path, tmpdir: Path | None = None) -> str:
    """nginx.conf for the Ingress objects; `upstreams` maps a backend Service name (e.g.
    registration-web) to the loopback port of that service's web process."""
    rs = routes(ingresses)
    missing = sorted({r.service for r in rs} - set(upstreams))
    if missing:
        raise UnsupportedIngress(f"no loopback upstream for {missing}")
    hosts: dict[str, list[Route]] = {}
    for r in rs:
        hosts.setdefault(r.host, []).append(r)
    lines = [
        "daemon off;", "worker_processes 1;", f"pid {workdir}/nginx.pid;",
        f"error_log {workdir}/error.log warn;", "events { worker_connections 1024; }", "http {",
        # The ingress's answer codes, with the client address and upstream timings: the fault
        # tests count 5xx here as well as at the client.
        "  log_format ingress '$remote_addr $status $request_method $uri $upstream_status "
        "$request_time';",
        f"  access_log {workdir}/ingress.log ingress;",
        *(f"  {k}_temp_path {tmpdir or workdir / 'tmp'}/{k};" for k in TEMP_KINDS),
        "  server_tokens off;",
        # ingress-nginx defaults: keep-alive to upstreams, request buffering on.
        "  proxy_http_version 1.1;", "  proxy_request_buffering on;",
    ]
    for svc, port in sorted(upstreams.items()):
        lines += [f"  upstream {svc} {{ server 127.0.0.1:{port}; keepalive 16; }}"]
    for i, (host, hrs) in enumerate(hosts.items()):
        lines += ["  server {", f"    listen 127.0.0.1:{listen}" + (" default_server;" if i == 0
                                                                  else ";"),
                  f"    server_name {host};"]
        if not any(_locations(r) == ["/"] for r in hrs):
            lines += ["    location / { return 404; }"]  # the default backend: unknown path
        for r in hrs:
            for loc in _locations(r):
                lines += [
                    f"    location {loc} {{",
                    f"      client_max_body_size {r.setting('proxy-body-size')};",
                    f"      proxy_connect_timeout {r.setting('proxy-connect-timeout')}s;",
                    f"      proxy_read_timeout {r.setting('proxy-read-timeout')}s;",
                    f"      proxy_send_timeout {r.setting('proxy-send-timeout')}s;",
                    "      proxy_set_header Host $host;",
                    '      proxy_set_header Connection "";',
                    # use-forwarded-headers false: what the client sent is replaced.
                    "      proxy_set_header X-Forwarded-For $remote_addr;",
                    "      proxy_set_header X-Real-IP $remote_addr;",
                    "      proxy_set_header X-Forwarded-Proto $scheme;",
                    "      proxy_set_header X-Forwarded-Host $host;",
                    "      proxy_set_header X-Request-ID $request_id;",
                    f"      proxy_pass http://{r.service};",
                    "    }"]
        lines += ["  }"]
    return "\n".join(lines + ["}", ""])


def nginx_binary() -> str:
    for cand in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if cand and Path(cand).exists():
            return cand
    raise RuntimeError("nginx not found: apt-get install -y nginx-light (or nginx)")


@dataclass
class LocalNginx:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    tmpdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def start(upstreams: Mapping[str, int], port: int, workdir: Path,
          ingresses: Iterable[Mapping[str, Any]] | None = None) -> LocalNginx:
    """Render the config from the manifests, check it with `nginx -t`, run nginx in the
    foreground of its own process group, and return once it accepts connections."""
    workdir.mkdir(parents=True, exist_ok=True)
    # Started as root, nginx's workers run as nobody and buffer large request bodies to disk:
    # their temp dirs live under /tmp, where nobody can reach them (a workdir may not be).
    tmpdir = Path(tempfile.mkdtemp(prefix="bbi-nginx-"))
    os.chmod(tmpdir, 0o755)
    for k in TEMP_KINDS:
        (tmpdir / k).mkdir()
        os.chmod(tmpdir / k, 0o777)
    conf = workdir / "nginx.conf"
    conf.write_text(render(load_ingresses() if ingresses is None else ingresses, upstreams,
                           port, workdir, tmpdir))
    nginx = nginx_binary()
    check = subprocess.run([nginx, "-t", "-q", "-p", str(workdir), "-c", str(conf)],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed for {conf}:\n{check.stderr}")
    log = (workdir / "nginx.out").open("ab")
    proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited {proc.returncode}: "
                               f"{(workdir / 'error.log').read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return LocalNginx(port, workdir, proc, tmpdir)
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("nginx did not listen within 30 s")
