"""Ask every gunicorn worker process of a service, not just whichever one the kernel picks.

Each worker process keeps its own identity-provider key cache, so "every process has cached
the keys" and "every process recovered" are claims about each worker. Requests go straight
to the service's port on fresh connections; the worker that accepted one is the process
holding the server end of that connection (/proc), looked up while it is kept alive."""
from __future__ import annotations

import http.client
import os
from pathlib import Path

from tests.prodlike.stack import ProdlikeStack


def worker_pids(stack: ProdlikeStack, service: str) -> set[int]:
    """The gunicorn master's children (deploy/bin/web execs gunicorn in the spawned pid)."""
    master = stack.procs[f"{service}_web"].pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(p) for p in children}


def _server_inode(port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote = f[1].split(":"), f[2].split(":")
        if int(local[1], 16) == port and int(remote[1], 16) == client_port:
            return f[9]
    return None


def _holder(inode: str, pids: set[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


def answer_from_each(stack: ProdlikeStack, service: str, path: str, headers: dict[str, str],
                     attempts: int = 300) -> dict[int, int]:
    """GET `path` on fresh connections until every worker has answered once; returns
    worker pid -> HTTP status of its answer."""
    pids = worker_pids(stack, service)
    port = stack.web_ports[service]
    out: dict[int, int] = {}
    for _ in range(attempts):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)  # HTTP/1.1: kept alive after it
            resp = conn.getresponse()
            resp.read()
            assert conn.sock is not None
            inode = _server_inode(port, conn.sock.getsockname()[1])
            pid = _holder(inode, pids) if inode else None
        finally:
            conn.close()
        if pid is not None and pid not in out:
            out[pid] = resp.status
        if set(out) == pids:
            return out
    raise AssertionError(f"{attempts} connections reached only workers {sorted(out)} of "
                         f"{sorted(pids)}")
