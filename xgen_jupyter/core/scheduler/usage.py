"""Accounting: per user and model, requests, prompt and completion tokens, and memory held over time.

Tokens come from the engine's own numbers at the end of each answer: the ``usage`` object (a
plain answer, or a stream asked with ``stream_options.include_usage``), else llama-server's
``timings`` on a stream's last event (``cache_n + prompt_n`` prompt tokens, ``predicted_n``
completion tokens); a stream with neither (llama-cpp-python) counts one completion token per
event with content (how llama.cpp engines stream) and no prompt tokens. Memory-seconds: a server's planned GPU and host bytes times the seconds it was
ready, credited to its owner and name.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..process.events import Event
from ..process.states import FINAL

_USAGE = re.compile(rb'"usage"\s*:\s*(\{[^{}]*\})')
_TIMINGS = re.compile(rb'"timings"\s*:\s*(\{[^{}]*\})')
_CONTENT = re.compile(rb'"delta"\s*:\s*\{\s*"content"\s*:\s*"[^"]')
TAIL = 16384  # the numbers are in the answer's last event / last bytes


class Tail:
    """The last bytes of an answer, fed chunk by chunk as the proxy relays it."""

    def __init__(self) -> None:
        self.buf = b""
        self.events = 0  # stream events that carried text

    def feed(self, chunk: bytes) -> None:
        self.buf = (self.buf + chunk)[-TAIL:]
        self.events += len(_CONTENT.findall(chunk))

    def usage(self) -> tuple[int, int] | None:
        """(prompt, completion) from the answer's ``usage`` object alone, or None without one."""
        return _last(_USAGE, _from_usage, self.buf)

    def tokens(self) -> tuple[int, int] | None:
        """(prompt, completion) tokens the engine reported, or None when it said nothing."""
        found = self.usage() or _last(_TIMINGS, _from_timings, self.buf)
        return found or ((0, self.events) if self.events else None)


def _last(pattern: re.Pattern[bytes], read: Any, buf: bytes) -> tuple[int, int] | None:
    """The last well-formed object ``pattern`` finds in ``buf``, read into token counts."""
    for raw in reversed(pattern.findall(buf)):
        try:
            return read(json.loads(raw))
        except (ValueError, TypeError, AttributeError):
            continue
    return None


def _from_usage(u: dict[str, Any]) -> tuple[int, int]:
    # OpenAI's names, else Anthropic's (/v1/messages)
    return (int(u.get("prompt_tokens") or u.get("input_tokens") or 0),
            int(u.get("completion_tokens") or u.get("output_tokens") or 0))


def _from_timings(t: dict[str, Any]) -> tuple[int, int]:
    return int(t.get("cache_n") or 0) + int(t.get("prompt_n") or 0), int(t.get("predicted_n") or 0)


@dataclass
class Counts:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    gpu_byte_seconds: float = 0.0
    host_byte_seconds: float = 0.0


class Usage:
    """Thread-safe counters keyed by (user, model); live servers' memory counted up to now."""

    def __init__(self, default_user: str = "local") -> None:
        self.default_user = default_user
        self._counts: dict[tuple[str, str], Counts] = defaultdict(Counts)
        self._held: dict[str, tuple[str, int, int, float]] = {}  # server -> (owner, gpu, host, since)
        self._lock = threading.Lock()

    def request(self, user: str, model: str, tokens: tuple[int, int] | None) -> None:
        with self._lock:
            c = self._counts[(user, model)]
            c.requests += 1
            if tokens is not None:
                c.prompt_tokens += tokens[0]
                c.completion_tokens += tokens[1]

    def on_event(self, event: Event) -> None:
        """Supervisor listener: memory is held from ready until the server stops."""
        if event.kind != "state":
            return
        state, name, now = event.data.get("state"), event.server, time.time()
        if state == "ready":
            now = float(event.data.get("ready_at") or now)
            mem = (event.data.get("plan") or {}).get("memory") or {}
            owner = event.data.get("owner") or self.default_user
            with self._lock:
                self._held[name] = (owner, int(mem.get("gpu_total") or 0), int(mem.get("host_total") or 0), now)
        elif state in FINAL or state == "stopping":
            with self._lock:
                held = self._held.pop(name, None)
                if held is not None:
                    self._credit(name, held, now)

    def _credit(self, name: str, held: tuple[str, int, int, float], now: float) -> None:
        owner, gpu, host, since = held
        c = self._counts[(owner, name)]
        c.gpu_byte_seconds += gpu * (now - since)
        c.host_byte_seconds += host * (now - since)

    def snapshot(self) -> dict[tuple[str, str], Counts]:
        """Every (user, model)'s counts, with the memory of servers still running counted up to now."""
        now = time.time()
        with self._lock:
            out = {k: Counts(**vars(c)) for k, c in self._counts.items()}
            for name, (owner, gpu, host, since) in self._held.items():
                c = out.setdefault((owner, name), Counts())
                c.gpu_byte_seconds += gpu * (now - since)
                c.host_byte_seconds += host * (now - since)
        return out
