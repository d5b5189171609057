"""The box service seen from a user's Jupyter server: objects with the surface the handlers and
the proxy use on XGenCore (``core.load``, ``core.manager.get(name).logs`` ...), each a call on the
service's socket. :func:`core_for` picks it when the service's socket is in the shared folder,
else the core runs in this process as before (a laptop, Binder, a single user).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, TypeVar

from ..core.api import plan_from_dict
from ..core.config import CoreConfig
from ..core.hardware.types import HardwareReport
from ..core.planning.plan import LaunchPlan
from ..core.planning.request import LoadRequest, parse_request
from ..core.process.logbuffer import LogLine
from ..core.process.manager import Event
from .client import BoxClient, ServiceUnavailable, find_socket
from .slot_client import RemoteSlot

IN_PROCESS = "in this Jupyter server"
T = TypeVar("T")
#: Service calls of one Jupyter server at once: each may wait ``retry_for`` seconds while the
#: service restarts, so they get a pool of their own rather than the IOLoop's default one.
CALL_THREADS = 32


class Data:
    """A reply shown as-is (a plan, a backend): the handlers only call ``to_dict()``."""

    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    def to_dict(self) -> dict[str, Any]:
        return dict(self._d)


def _follow(client: BoxClient, op: str, args: dict[str, Any], on_msg: Callable[[dict[str, Any]], None],
            once: bool) -> Callable[[], None]:
    """Read a streamed reply on a thread; reconnect after the service restarts (unless ``once``)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                for msg in client.stream(op, **args):
                    if stop.is_set():
                        return
                    on_msg(msg)
                return
            except ServiceUnavailable:
                if once:
                    return
                stop.wait(1.0)
            except Exception:  # a broken listener or a refused stream: end quietly, as the core's listeners do
                return

    threading.Thread(target=run, name=f"xgen-box-{op}", daemon=True).start()
    return stop.set


class RemoteLogs:
    def __init__(self, client: BoxClient, name: str) -> None:
        self.client, self.name = client, name
        self.path = None

    def tail(self, n: int | None = None, after: int = 0) -> list[LogLine]:
        lines = [LogLine(**d) for d in self.client.call("logs", name=self.name, tail=100_000 if n is None else n)]
        return [ln for ln in lines if ln.seq > after]

    def text_tail(self, n: int = 40) -> str:
        return "\n".join(ln.text for ln in self.tail(n))

    def history_and_subscribe(self, cb: Callable[[LogLine], None],
                              n: int | None = None) -> tuple[list[LogLine], Callable[[], None]]:
        history = self.tail(n)
        last = history[-1].seq if history else 0

        def on_msg(msg: dict[str, Any]) -> None:
            line = LogLine(**msg["line"])
            if line.seq > last:  # the stream replays from its own tail: drop what history had
                cb(line)

        return history, _follow(self.client, "follow_logs", {"name": self.name, "tail": 50}, on_msg, once=True)

    def subscribe(self, cb: Callable[[LogLine], None]) -> Callable[[], None]:
        return self.history_and_subscribe(cb, 0)[1]


class RemoteServer:
    """A snapshot of one of our servers in the service; ``api_key`` and ``touch`` ask the service."""

    def __init__(self, client: BoxClient, d: dict[str, Any]) -> None:
        self._client, self._d = client, d
        self.name: str = d["name"]
        self.state: str = d["state"]
        self.endpoint: str | None = d.get("endpoint")
        self.error: dict[str, Any] | None = d.get("error")
        self.owner: str | None = d.get("owner")
        self.shared_with: list[str] = list(d.get("shared_with") or [])
        self.created_at: float = float(d.get("created_at") or 0)
        self.ready_at: float | None = d.get("ready_at")
        self.backend: str = str(d.get("backend"))
        self.pid, self.port = d.get("pid"), d.get("port")
        self.queue: dict[str, Any] | None = d.get("queue")  # the service's fair queue (boxd/slots.py)
        self.request = SimpleNamespace(model=d.get("model"), server_type=d.get("server_type", "llm"))
        self.logs = RemoteLogs(client, self.name)

    @property
    def plan(self) -> LaunchPlan | None:
        """The launch plan, as ManagedServer has it (the proxy's queue reads its slots)."""
        d = self._d.get("plan")
        return plan_from_dict(d) if isinstance(d, dict) else None

    @property
    def api_key(self) -> str:
        return str(self._client.call("route", model=self.name)["api_key"])

    def touch(self) -> None:
        """The proxy marks use, then asks for the key: the service's ``route`` (api_key) marks it there."""

    def to_dict(self, secrets: bool = False) -> dict[str, Any]:
        return {**self._d, "api_key": self.api_key} if secrets else dict(self._d)


class RemoteManager:
    def __init__(self, client: BoxClient) -> None:
        self.client = client

    def get(self, name: str) -> RemoteServer:
        return RemoteServer(self.client, self.client.call("get", name=name))

    def servers(self) -> list[RemoteServer]:
        return [RemoteServer(self.client, d) for d in self.client.call("servers")]

    def unload(self, name: str, reason: str = "unloaded on request") -> RemoteServer:
        return RemoteServer(self.client, self.client.call("unload", name=name))

    def forget(self, name: str) -> None:
        self.client.call("forget", name=name)

    def subscribe(self, cb: Callable[[Event], None]) -> Callable[[], None]:
        def on_msg(msg: dict[str, Any]) -> None:
            if msg.get("kind") in ("state", "progress", "queue"):
                cb(Event(msg["kind"], msg["server"], msg["data"], msg.get("time", time.time())))

        return _follow(self.client, "events", {}, on_msg, once=False)


class RemoteLedger:
    """The usage books kept by the service (boxd/usage_ops.py): our answers are booked to the socket's
    peer, whatever user the proxy names; ``rows(None)`` is the box, any other the peer's own."""

    def __init__(self, client: BoxClient) -> None:
        self.client = client

    def record(self, user: str, model: str, requests: int, prompt_tokens: int, completion_tokens: int) -> None:
        self.client.call("usage_add", model=model, requests=requests, prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens)

    def rows(self, user: str | None = None) -> list[dict[str, Any]]:
        return list(self.client.call("usage", scope="box" if user is None else "mine"))


class RemoteCore:
    """XGenCore's surface, served by the box service."""

    cluster = None
    registry = None
    #: Loads refused for memory are retried by the service after evicting idle servers box-wide
    #: (boxd/evict.py): the Jupyter server's scheduler does not evict on its own.
    evicts = True

    def __init__(self, client: BoxClient, config: CoreConfig | None = None) -> None:
        self.client = client
        # This Jupyter server's own settings: what stays here (model pulls into its model folders).
        self.config = config or CoreConfig()
        self.manager = RemoteManager(client)
        self.ledger = RemoteLedger(client)
        self.hello: dict[str, Any] = client.call("hello")  # fails loudly if the service does not answer
        self.where = f"box service at {client.path}, user {self.hello.get('user')}"
        self.pool = ThreadPoolExecutor(CALL_THREADS, thread_name_prefix="xgen-box-call")

    def hardware(self, refresh: bool = False) -> HardwareReport:
        return HardwareReport.from_dict(self.client.call("hardware", refresh=refresh))

    def backends(self, refresh: bool = False) -> dict[str, Data]:
        return {k: Data(v) for k, v in self.client.call("backends", refresh=refresh).items()}

    def models(self) -> list[dict[str, Any]]:
        return list(self.client.call("models"))

    def request(self, data: dict[str, Any] | LoadRequest) -> LoadRequest:
        return data if isinstance(data, LoadRequest) else parse_request(data)  # 400 here, before any call

    def plan(self, request: LoadRequest, name: str | None = None) -> Data:
        return Data(self.client.call("plan", request=request.to_dict()))

    def load(self, data: dict[str, Any] | LoadRequest) -> RemoteServer:
        return RemoteServer(self.client, self.client.call("load", request=self.request(data).to_dict()))

    def unload(self, name: str) -> RemoteServer:
        return self.manager.unload(name)

    def engine_stats(self, name: str) -> dict[str, Any]:
        return dict(self.client.call("get", name=name, stats=True).get("engine") or {})

    def box_servers(self) -> list[dict[str, Any]]:
        return list(self.client.call("box"))

    def share(self, name: str, users: list[str], rotate: bool = False) -> SimpleNamespace:
        r = self.client.call("share", name=name, users=users, rotate=rotate)
        return SimpleNamespace(name=r["name"], shared_with=r["shared_with"], owner=r["model"].split("/")[0])

    def route(self, model: str) -> tuple[str, str]:
        """(endpoint, key) of ``name`` (ours) or ``owner/name`` (shared with us), asked anew for every
        request: the service checks readiness and the grant each time and marks the use, so an unshare
        or an engine's restart holds from the next request (nothing here keeps a key)."""
        r = self.client.call("route", model=model)
        return str(r["endpoint"]), str(r["api_key"])

    def shared(self, owner: str, name: str) -> tuple[str, str]:
        return self.route(f"{owner}/{name}")

    def slot_queue(self, model: str) -> RemoteSlot:
        """A slot of ``model`` (ours, or ``owner/name`` shared with us) in the service's fair queue, for
        one request: the proxy's scheduler uses it in place of a queue of its own."""
        return RemoteSlot(self.client.path, model, self.client.retry_for)

    def shutdown(self) -> None:
        """The engines are the service's: they keep running when this Jupyter server stops."""
        self.pool.shutdown(wait=False, cancel_futures=True)


def core_for(config: CoreConfig) -> Any:
    """A client of the box service when its socket is in the shared folder, else the core in-process."""
    sock = None if config.cluster else find_socket(config.shared_dir)
    if sock is not None:
        return RemoteCore(BoxClient(sock, retry_for=5.0), config)  # a request waits this long at most
    from ..core.service import XGenCore

    return XGenCore(config)


async def off_loop(core: Any, fn: Callable[..., T], *args: Any, light: bool = False) -> T:
    """``fn(*args)`` without blocking the IOLoop: with the box service every core call is a socket
    round trip (up to ``retry_for`` seconds while the service is away), so it runs on the client's
    pool. In-process, a ``light`` call (a lookup under a lock) runs inline as before, others on a thread.
    """
    if isinstance(core, RemoteCore):
        return await asyncio.get_running_loop().run_in_executor(core.pool, functools.partial(fn, *args))
    if light:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def where(core: Any) -> str:
    """Says where this Jupyter server's models run, for the UI."""
    return core.where if isinstance(core, RemoteCore) else IN_PROCESS
