"""A websocket read on a daemon thread (websocket-client, a Jupyter dependency), JSON per message."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import websocket

#: Seconds a blocking recv waits before the thread looks at its stop flag again.
_POLL = 0.5


class WebSocketThread:
    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        on_message: Callable[[dict[str, Any]], None],
        name: str = "xgen-ws",
        reconnect: bool = False,
    ) -> None:
        self.url = url
        self.headers = [f"{k}: {v}" for k, v in headers.items()]
        self.on_message = on_message
        self.reconnect = reconnect
        self.failed: str | None = None  # why the socket ended, when it did so on its own
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * _POLL + 1)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._session()
                delay = 0.5
            except Exception as exc:  # refused, closed, bad status: say why, maybe retry
                self.failed = describe(exc)
            if not self.reconnect or self._stop.wait(delay):
                return
            delay = min(delay * 2, 10.0)

    def _session(self) -> None:
        ws = websocket.create_connection(self.url, header=self.headers, timeout=30)
        ws.settimeout(_POLL)
        self.connected.set()
        self.failed = None
        try:
            while not self._stop.is_set():
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not raw:  # closed by the server
                    raise ConnectionError("closed by the server")
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    try:
                        self.on_message(msg)
                    except Exception:  # a broken consumer must not end the stream
                        pass
        finally:
            self.connected.clear()
            try:
                ws.close()
            except Exception:
                pass


def describe(exc: Exception) -> str:
    """One line: a refused upgrade shows the API's error message, not the response headers."""
    if isinstance(exc, websocket.WebSocketBadStatusException):
        message = ""
        try:
            body = json.loads(exc.resp_body or b"{}")
            message = str(body.get("message") or "")
            if body.get("hint"):
                message += f" ({body['hint']})"
        except (ValueError, AttributeError):
            pass
        return f"HTTP {exc.status_code}" + (f": {message}" if message else "")
    return f"{type(exc).__name__}: {exc}"
