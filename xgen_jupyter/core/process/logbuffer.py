"""An engine's log: a bounded ring buffer in memory plus a capped, rotated file on disk."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: float
    text: str
    attempt: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "time": self.time, "text": self.text, "attempt": self.attempt}


LogListener = Callable[[LogLine], None]


def remover(lock: threading.Lock | threading.RLock, listeners: list[Any], cb: Any) -> Callable[[], None]:
    """An idempotent unsubscribe for ``cb`` in a lock-guarded listener list."""

    def unsubscribe() -> None:
        with lock:
            if cb in listeners:
                listeners.remove(cb)

    return unsubscribe


def notify(listeners: list[Any], item: Any) -> None:
    """Call each listener with ``item``; one that raises is skipped, never the caller's problem."""
    for cb in listeners:
        try:
            cb(item)
        except Exception:
            pass


class LogBuffer:
    """Thread-safe; ``seq`` grows across attempts so followers never see a line twice."""

    def __init__(self, path: Path | None, max_lines: int = 5000, max_bytes: int = 20 * 1024 * 1024) -> None:
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._lock = threading.Lock()
        self._listeners: list[LogListener] = []
        self._seq = 0
        self.path = path
        self._max_bytes = max_bytes
        self._written = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, text: str, attempt: int = 0) -> LogLine:
        with self._lock:
            self._seq += 1
            line = LogLine(self._seq, time.time(), text.rstrip("\r\n"), attempt)
            self._lines.append(line)
            self._write(line)
            listeners = list(self._listeners)
        notify(listeners, line)  # a broken follower must not stop the pump
        return line

    def _write(self, line: LogLine) -> None:
        if self.path is None:
            return
        data = (line.text + "\n").encode("utf-8", "replace")
        try:
            if self._written + len(data) > self._max_bytes:
                # Keep one previous file; a full disk must not take the server down.
                self.path.replace(self.path.with_suffix(self.path.suffix + ".1"))
                self._written = 0
            with self.path.open("ab") as f:
                f.write(data)
            self._written += len(data)
        except OSError:
            pass

    def tail(self, n: int | None = None, after: int = 0) -> list[LogLine]:
        with self._lock:
            lines = [ln for ln in self._lines if ln.seq > after]
        return lines if n is None else lines[-n:] if n > 0 else []

    def text_tail(self, n: int = 40) -> str:
        return "\n".join(ln.text for ln in self.tail(n))

    def subscribe(self, cb: LogListener) -> Callable[[], None]:
        return self.history_and_subscribe(cb, 0)[1]

    def history_and_subscribe(self, cb: LogListener, n: int | None = None) -> tuple[list[LogLine], Callable[[], None]]:
        """History and a live subscription taken atomically, so no line falls between them."""
        with self._lock:
            lines = list(self._lines) if n != 0 else []
            self._listeners.append(cb)
        return (lines if n is None else lines[-n:] if n > 0 else []), remover(self._lock, self._listeners, cb)
