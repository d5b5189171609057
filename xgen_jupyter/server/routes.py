"""Every xgen route, written as in openapi.yaml (``{name}`` placeholders), and its handler."""

from __future__ import annotations

import re
from typing import Any

from .handlers.events import EventsWebSocket
from .handlers.info import BackendsHandler, HardwareHandler, ModelsHandler, PlanHandler
from .handlers.keys import KeyHandler, KeysHandler
from .handlers.logs import LogsWebSocket
from .handlers.metrics import MetricsHandler
from .handlers.pulls import PullHandler, PullsHandler
from .handlers.servers import ServerHandler, ServersHandler
from .handlers.share import ShareHandler
from .handlers.usage import UsageHandler
from .proxy import ROUTES as PROXY_ROUTES
from .proxy import CompletionsProxyHandler, ModelsProxyHandler

ROUTES: list[tuple[str, type, dict[str, Any]]] = [
    ("xgen/api/hardware", HardwareHandler, {}),
    ("xgen/api/backends", BackendsHandler, {}),
    ("xgen/api/models", ModelsHandler, {}),
    ("xgen/api/plan", PlanHandler, {}),
    ("xgen/api/pulls", PullsHandler, {}),
    ("xgen/api/pulls/{job}", PullHandler, {}),
    ("xgen/api/servers", ServersHandler, {}),
    ("xgen/api/servers/{name}", ServerHandler, {}),
    ("xgen/api/servers/{name}/share", ShareHandler, {}),
    # The log tail (plain GET) and the log websocket (GET + Upgrade) share a path: one handler.
    ("xgen/api/servers/{name}/logs", LogsWebSocket, {}),
    ("xgen/api/events", EventsWebSocket, {}),
    ("xgen/metrics", MetricsHandler, {}),
    ("xgen/api/usage", UsageHandler, {}),
    ("xgen/api/keys", KeysHandler, {}),
    ("xgen/api/keys/{key_id}", KeyHandler, {}),
    ("xgen/v1/models", ModelsProxyHandler, {}),
    ("xgen/v1/models/{name}", ModelsProxyHandler, {}),
    *((f"xgen/v1/{r}", CompletionsProxyHandler, {"route": r}) for r in PROXY_ROUTES),
]

_PARAM = re.compile(r"\{(\w+)\}")


def to_pattern(template: str) -> str:
    """``xgen/api/servers/{name}`` → a tornado pattern with a named group per placeholder."""
    return _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template) + "/?"


def handlers() -> list[tuple[str, type, dict[str, Any]]]:
    return [(to_pattern(t), h, kw) for t, h, kw in ROUTES]
