"""LocalClient: an XGenCore in this process, for plain IPython where no Jupyter server is found.

Engines started here are children of this kernel and are stopped when it exits.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from ..core.api import FINAL, STREAMED_EVENTS, gpus_message, hello_message
from ..core.process.manager import Event
from ..core.service import XGenCore
from .client_api import Message, Stop


class LocalClient:
    mode = "local"
    where = "this kernel"

    _shared: LocalClient | None = None
    _shared_lock = threading.Lock()

    def __init__(self, core: XGenCore | None = None) -> None:
        self.core = core or XGenCore()

    @classmethod
    def shared(cls) -> LocalClient:
        """One core per process: every magic and panel sees the same servers."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
                atexit.register(cls._shared.core.shutdown)
            return cls._shared

    def hardware(self, refresh: bool = False) -> Message:
        return self.core.hardware(refresh).to_dict()

    def backends(self) -> dict[str, Message]:
        return {b: inst.to_dict() for b, inst in self.core.backends().items()}

    def models(self) -> list[Message]:
        return self.core.models()

    def plan(self, request: Message) -> Message:
        return self.core.plan(self.core.request(request)).to_dict()

    def load(self, request: Message) -> Message:
        return self.core.load(request).to_dict()

    def servers(self) -> list[Message]:
        return [s.to_dict() for s in self.core.manager.servers()]

    def box_servers(self) -> list[Message]:
        return self.core.box_servers()

    def server(self, name: str) -> Message:
        return self.core.manager.get(name).to_dict()

    def unload(self, name: str) -> Message:
        return self.core.unload(name).to_dict()

    def logs(self, name: str, tail: int = 100) -> list[Message]:
        return [ln.to_dict() for ln in self.core.manager.get(name).logs.tail(tail)]

    # API keys open a Jupyter server's proxy (xgen/v1): without one there is nothing for them to open.
    def keys(self) -> list[Message]:
        raise _no_proxy()

    def create_key(self, name: str, models: list[str] | None = None) -> Message:
        raise _no_proxy()

    def revoke_key(self, key_id: str) -> Message:
        raise _no_proxy()

    def usage(self, scope: str = "mine") -> list[Message]:
        """The box's books as this kernel's core keeps them (its servers' memory-seconds; requests and
        tokens are counted by a Jupyter server's proxy, which this kernel does not have)."""
        ledger = self.core.ledger
        return [r.to_dict() for r in ledger.rows(None if scope == "box" else ledger.owner())]

    def follow_logs(
        self, name: str, on_line: Callable[[Message], None], stop: threading.Event, tail: int
    ) -> None:
        server = self.core.manager.get(name)
        history, unsubscribe = server.logs.history_and_subscribe(lambda ln: on_line(ln.to_dict()), tail)
        try:
            for line in history:
                on_line(line.to_dict())
            while not stop.wait(0.2):
                if server.state in FINAL:
                    break
        finally:
            unsubscribe()

    def events(self, on_message: Callable[[Message], None], interval: float = 2.0) -> Stop:
        """The events websocket's messages, made here: manager events plus GPU samples."""
        from ..core.hardware.chain import sample_gpus

        done = threading.Event()

        def on_event(event: Event) -> None:
            if event.kind in STREAMED_EVENTS:
                on_message(event.to_dict())

        unsubscribe = self.core.manager.subscribe(on_event)

        def run() -> None:
            on_message(hello_message(self.servers(), self.hardware()))
            while interval > 0 and not done.wait(interval):
                try:
                    gpus = [g.to_dict() for g in sample_gpus()]
                except Exception:
                    continue
                on_message(gpus_message(gpus))

        threading.Thread(target=run, name="xgen-local-events", daemon=True).start()

        def stop() -> None:
            done.set()
            unsubscribe()

        return stop

    def openai_target(self, name: str) -> tuple[str, str]:
        server = self.core.manager.get(name)
        if server.endpoint is None:
            from ..core.errors import XGenError

            raise XGenError(
                f"server {name!r} is {server.state}, not ready", "wait for `%xgen load` to finish"
            )
        return server.endpoint + "/v1", server.api_key

    def __repr__(self) -> str:
        return "LocalClient(in this kernel)"


def _no_proxy() -> Exception:
    from ..core.errors import XGenError

    return XGenError("API keys open the proxy of a Jupyter server (xgen/v1); this kernel runs xgen in-process, "
                     "without one", "run the notebook in JupyterLab or Jupyter Server with xgen-jupyter")
