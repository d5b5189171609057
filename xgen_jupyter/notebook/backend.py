"""One interface for the magics and the panel, two ways to reach the engines.

``RemoteXGen`` talks to the xgen extension of this kernel's Jupyter server over REST/WS;
``LocalXGen`` runs an XGenCore in this process (plain IPython, no Jupyter server). Both
speak the API's JSON shapes (docs/API.md), so callers never care which one they hold.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

Message = dict[str, Any]
Stop = Callable[[], None]

FINAL_STATES = frozenset({"stopped", "failed", "crashed"})


class XGenBackend(Protocol):
    mode: str  # "remote" or "local"
    where: str  # a few words for messages: the server URL, or "this kernel"

    def hardware(self, refresh: bool = False) -> Message: ...
    def backends(self) -> dict[str, Message]: ...
    def models(self) -> list[Message]: ...
    def plan(self, request: Message) -> Message: ...
    def load(self, request: Message) -> Message: ...
    def servers(self) -> list[Message]: ...
    def box_servers(self) -> list[Message]: ...
    def server(self, name: str) -> Message: ...
    def unload(self, name: str) -> Message: ...
    def logs(self, name: str, tail: int = 100) -> list[Message]: ...

    def follow_logs(
        self, name: str, on_line: Callable[[Message], None], stop: threading.Event, tail: int
    ) -> None:
        """Call ``on_line`` with history then live lines until ``stop`` is set (blocks)."""
        ...

    def events(self, on_message: Callable[[Message], None], interval: float = 2.0) -> Stop:
        """Deliver events-websocket messages (hello, state, progress, gpus) from a daemon thread."""
        ...

    def openai_target(self, name: str) -> tuple[str, str]:
        """(base_url, api_key) for an ``openai.OpenAI`` client that reaches server ``name``."""
        ...


_lock = threading.Lock()
_cached: XGenBackend | None = None


def get_backend(refresh: bool = False) -> XGenBackend:
    """This kernel's backend: remote when a Jupyter server is found, else in-process (cached)."""
    global _cached
    with _lock:
        if _cached is None or refresh:
            from .connection import discover

            conn = discover()
            if conn is not None:
                from .remote import RemoteXGen

                _cached = RemoteXGen(conn)
            else:
                from .local import LocalXGen

                _cached = LocalXGen.shared()
        return _cached


def set_backend(backend: XGenBackend | None) -> None:
    """Use this backend from now on (tests, or a user pointing at another server)."""
    global _cached
    with _lock:
        _cached = backend
