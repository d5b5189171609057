"""Accounting: per user and model, requests, prompt and completion tokens, and memory held over time.

Tokens come from the engine's own numbers at the end of each answer: the ``usage`` object (a
plain answer, or a stream asked with ``stream_options.include_usage``), else llama-server's
``timings`` on a stream's last event (``cache_n + prompt_n`` prompt tokens, ``predicted_n``
completion tokens); a stream with neither (llama-cpp-python) counts one completion token per
event with content (how llama.cpp engines stream) and no prompt tokens. The counts go to the box's
usage books (core/box/usage_books.py), which also hold the memory-seconds the reserving side metered.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from typing import Any

log = logging.getLogger("xgen.scheduler")

# One level of nesting inside: llama-server's prompt_tokens_details, the Responses API's input_tokens_details.
_USAGE = re.compile(rb'"usage"\s*:\s*(\{(?:[^{}]|\{[^{}]*\})*\})')
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
    # OpenAI's names, else Anthropic's (/v1/messages) and the Responses API's (/v1/responses)
    return (int(u.get("prompt_tokens") or u.get("input_tokens") or 0),
            int(u.get("completion_tokens") or u.get("output_tokens") or 0))


def _from_timings(t: dict[str, Any]) -> tuple[int, int]:
    return int(t.get("cache_n") or 0) + int(t.get("prompt_n") or 0), int(t.get("predicted_n") or 0)


COLUMNS = ("requests", "prompt_tokens", "completion_tokens", "gpu_byte_seconds", "host_byte_seconds")


class MemoryLedger:
    """Books kept in memory: for a core without a ledger of its own (a test's stand-in)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, user: str, model: str, requests: int, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            row = self._rows.setdefault((user, model), {"user": user, "model": model, **dict.fromkeys(COLUMNS, 0)})
            for k, v in zip(COLUMNS, (requests, prompt_tokens, completion_tokens), strict=False):
                row[k] += v

    def rows(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for k, r in sorted(self._rows.items()) if user is None or k[0] == user]


class Usage:
    """The proxy's side of the books: each answer's counts go to the core's ledger (the box registry's
    usage table, or the box service's ``usage_add`` op) on one writer thread, never on the IOLoop;
    a read first waits until everything counted before it is written."""

    def __init__(self, ledger: Any | None = None) -> None:
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._queue: queue.SimpleQueue[tuple[str, str, int, int]] = queue.SimpleQueue()
        self._pending = 0
        self._done = threading.Condition()
        self._writer: threading.Thread | None = None

    def request(self, user: str, model: str, tokens: tuple[int, int] | None) -> None:
        """One answered request (and its tokens, when the engine said): booked in the background."""
        prompt, completion = tokens or (0, 0)
        with self._done:
            self._pending += 1
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="xgen-usage", daemon=True)
                self._writer.start()
        self._queue.put((user, model, prompt, completion))

    def _write(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while not self._queue.empty():  # a burst of answers: one write per (user, model)
                batch.append(self._queue.get())
            sums: dict[tuple[str, str], list[int]] = {}
            for user, model, prompt, completion in batch:
                acc = sums.setdefault((user, model), [0, 0, 0])
                acc[0], acc[1], acc[2] = acc[0] + 1, acc[1] + prompt, acc[2] + completion
            for (user, model), (n, prompt, completion) in sums.items():
                try:
                    self.ledger.record(user, model, n, prompt, completion)
                except Exception as exc:  # counting must never fail a request that was answered
                    log.warning("xgen: could not book %d request(s) of %s on %s: %s", n, user, model, exc)
            with self._done:
                self._pending -= len(batch)
                self._done.notify_all()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every request counted so far is in the books."""
        with self._done:
            self._done.wait_for(lambda: self._pending <= 0, timeout)

    def rows(self, user: str | None = None) -> list[dict[str, Any]]:
        """The books' rows (``user``'s, or everyone's when None) as dicts; blocking: call off the IOLoop."""
        self.flush()
        return [r if isinstance(r, dict) else r.to_dict() for r in self.ledger.rows(user)]
