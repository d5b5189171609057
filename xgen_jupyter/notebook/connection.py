"""Find this kernel's own Jupyter server (URL + token) without the user typing either.

Order: ``XGEN_SERVER_URL``/``XGEN_TOKEN``, then ``JUPYTER_SERVER_URL``/``JUPYTER_TOKEN``, then
the running server whose pid is this kernel's parent (or a near ancestor: a kernel may be
started through a wrapper). None found: the magics run engines in this process instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

#: How many ancestors to walk: kernel → (wrapper, e.g. a nanny or a shell) → server.
_MAX_ANCESTORS = 4


@dataclass(frozen=True)
class Connection:
    """Where this kernel's Jupyter server listens and the token it accepts."""

    url: str  # base URL, always ending with "/" (includes the server's base_url)
    token: str
    source: str  # "env" or "parent pid <n>": said in messages, helps when it picked wrong

    def __post_init__(self) -> None:
        if not self.url.endswith("/"):
            object.__setattr__(self, "url", self.url + "/")

    def api(self, path: str) -> str:
        return self.url + path.lstrip("/")

    def ws(self, path: str) -> str:
        return "ws" + self.api(path)[4:]  # http→ws, https→wss

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def http(self, timeout: float = 30.0) -> httpx.Client:
        # trust_env=False: an HTTP(S)_PROXY meant for the internet must not see kernel→server traffic.
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=timeout, trust_env=False)

    def quote(self, name: str) -> str:
        return quote(name, safe="")


def from_env(env: dict[str, str] | None = None) -> Connection | None:
    env = dict(os.environ if env is None else env)
    for url_var, token_var in (("XGEN_SERVER_URL", "XGEN_TOKEN"), ("JUPYTER_SERVER_URL", "JUPYTER_TOKEN")):
        url = env.get(url_var, "").strip()
        if url:
            return Connection(url, env.get(token_var, "").strip(), f"env {url_var}")
    return None


def _ancestors(pid: int) -> list[int]:
    """The pid's parent, grandparent, ... (up to _MAX_ANCESTORS)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return [p.pid for p in proc.parents()[:_MAX_ANCESTORS]]
    except Exception:  # psutil missing or the process vanished: the parent is enough
        return [os.getppid()] if pid == os.getpid() else []


def pick_server(servers: Iterable[dict[str, Any]], ancestors: list[int]) -> dict[str, Any] | None:
    """The server info whose pid is the nearest ancestor of this process."""
    by_pid = {int(s.get("pid", -1)): s for s in servers}
    for pid in ancestors:
        if pid in by_pid:
            return by_pid[pid]
    return None


def from_running_servers(pid: int | None = None) -> Connection | None:
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:  # plain IPython without Jupyter installed
        return None
    try:
        servers = list(list_running_servers())
    except Exception:
        return None
    pid = os.getpid() if pid is None else pid
    ancestors = [os.getppid(), *_ancestors(pid)] if pid == os.getpid() else _ancestors(pid)
    info = pick_server(servers, list(dict.fromkeys(ancestors)))
    if info is None:
        return None
    return Connection(str(info["url"]), str(info.get("token") or ""), f"parent pid {info['pid']}")


def discover() -> Connection | None:
    """This kernel's Jupyter server, or None (in-process mode)."""
    return from_env() or from_running_servers()
