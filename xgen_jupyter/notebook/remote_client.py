"""RemoteClient: the client of the xgen extension of a Jupyter server, over REST and websockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..core.api import FINAL
from ..core.errors import XGenError, error_class
from .client_api import Message, Stop
from .connection import Connection
from .wsthread import WebSocketThread


def error_from_response(resp: httpx.Response) -> XGenError:
    """The API's ``{"error", "message", "hint"}`` as the matching XGenError class."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if resp.status_code in (401, 403):
        return XGenError(
            f"the Jupyter server refused the token ({resp.status_code})",
            "set XGEN_SERVER_URL and XGEN_TOKEN to this server's URL and token",
        )
    cls = error_class(str(body.get("error", "")))
    message = (
        body.get("message") or f"{resp.request.method} {resp.request.url.path} answered {resp.status_code}"
    )
    return cls(str(message), body.get("hint"))


class RemoteClient:
    mode = "remote"

    def __init__(self, conn: Connection, timeout: float = 120.0) -> None:
        self.conn = conn
        self.where = conn.url
        self._http = conn.http(timeout)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise XGenError(
                f"cannot reach the Jupyter server at {self.conn.url}: {exc}",
                "is it still running? (found via " + self.conn.source + ")",
            ) from None
        if resp.status_code >= 400:
            raise error_from_response(resp)
        return resp.text if path == "xgen/metrics" else resp.json()

    def hardware(self, refresh: bool = False) -> Message:
        return dict(self._call("GET", "xgen/api/hardware", params={"refresh": "1"} if refresh else None))

    def backends(self) -> dict[str, Message]:
        return dict(self._call("GET", "xgen/api/backends")["backends"])

    def models(self) -> list[Message]:
        return list(self._call("GET", "xgen/api/models")["models"])

    def plan(self, request: Message) -> Message:
        return dict(self._call("POST", "xgen/api/plan", json=request))

    def load(self, request: Message) -> Message:
        return dict(self._call("POST", "xgen/api/servers", json=request))

    def servers(self) -> list[Message]:
        return list(self._call("GET", "xgen/api/servers")["servers"])

    def box_servers(self) -> list[Message]:
        return list(self._call("GET", "xgen/api/servers", params={"scope": "box"})["servers"])

    def server(self, name: str) -> Message:
        return dict(self._call("GET", f"xgen/api/servers/{self.conn.quote(name)}"))

    def unload(self, name: str) -> Message:
        return dict(self._call("DELETE", f"xgen/api/servers/{self.conn.quote(name)}"))

    def logs(self, name: str, tail: int = 100) -> list[Message]:
        path = f"xgen/api/servers/{self.conn.quote(name)}/logs"
        return list(self._call("GET", path, params={"tail": str(tail)})["lines"])

    def keys(self) -> list[Message]:
        return list(self._call("GET", "xgen/api/keys")["keys"])

    def create_key(self, name: str, models: list[str] | None = None) -> Message:
        body: Message = {"name": name} if models is None else {"name": name, "models": models}
        return dict(self._call("POST", "xgen/api/keys", json=body))

    def revoke_key(self, key_id: str) -> Message:
        return dict(self._call("DELETE", f"xgen/api/keys/{self.conn.quote(key_id)}"))

    def usage(self, scope: str = "mine") -> list[Message]:
        return list(self._call("GET", "xgen/api/usage", params={"scope": scope})["rows"])

    def follow_logs(
        self, name: str, on_line: Callable[[Message], None], stop: threading.Event, tail: int
    ) -> None:
        self.server(name)  # ServerNotFound as one line before any socket opens
        url = self.conn.ws(f"xgen/api/servers/{self.conn.quote(name)}/logs?tail={tail}")

        def deliver(msg: Message) -> None:
            if msg.get("kind") == "log":
                on_line(msg["line"])

        ws = WebSocketThread(url, self.conn.headers(), deliver, name=f"xgen-logs-{name}")
        ws.start()
        try:
            last_check = time.monotonic()
            while not stop.wait(0.2):
                if ws.failed:
                    raise XGenError(f"the log stream of {name!r} closed: {ws.failed}")
                if time.monotonic() - last_check > 2.0:  # a stopped server writes no more lines
                    last_check = time.monotonic()
                    if self.server(name)["state"] in FINAL:
                        time.sleep(0.3)  # let the last lines arrive
                        break
        finally:
            ws.stop()

    def events(self, on_message: Callable[[Message], None], interval: float = 2.0) -> Stop:
        ws = WebSocketThread(
            self.conn.ws(f"xgen/api/events?interval={interval}"),
            self.conn.headers(),
            on_message,
            name="xgen-events",
            reconnect=True,
        )
        ws.start()
        return ws.stop

    def openai_target(self, name: str) -> tuple[str, str]:
        return self.conn.api("xgen/v1"), self.conn.token or "none"

    def __repr__(self) -> str:
        return f"RemoteClient({self.conn.url!r}, via {self.conn.source})"
