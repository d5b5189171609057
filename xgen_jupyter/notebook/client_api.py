"""The client: one interface for the magics and the panel, two ways to reach the servers.

``RemoteClient`` (remote_client.py) talks to the xgen extension of this kernel's Jupyter server
over REST/WS; ``LocalClient`` (local_client.py) runs an XGenCore in this process (plain IPython, no
Jupyter server). Both speak the API's JSON shapes (docs/API.md, core/api.py), so callers never
care which one they hold; ``current.get_client()`` picks one. This module imports neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

Message = dict[str, Any]
Stop = Callable[[], None]

class XGenClient(Protocol):
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
