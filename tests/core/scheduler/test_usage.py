"""Usage counting from the engine's own numbers; the proxy's counts booked off the caller's thread."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from xgen_jupyter.core.box.db import Database
from xgen_jupyter.core.box.usage_books import Entry, UsageBooks
from xgen_jupyter.core.scheduler.usage import Tail, Usage


def test_tokens_from_usage_then_from_llama_server_timings() -> None:
    t = Tail()
    t.feed(b'{"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}')
    assert t.tokens() == (12, 5)
    stream = Tail()
    for _ in range(400):  # a long stream: only the tail is kept, the last event holds the numbers
        stream.feed(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n')
    last = {"choices": [], "timings": {"cache_n": 3, "prompt_n": 10, "predicted_n": 4}}
    stream.feed(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
    assert stream.tokens() == (13, 4) and len(stream.buf) <= 16384
    assert Tail().tokens() is None
    bare = Tail()  # llama-cpp-python's stream: no usage, no timings
    for word in ("Hi", " there", "!"):
        bare.feed(b'data: {"choices": [{"delta": {"content": "' + word.encode() + b'"}}]}\n\n')
    bare.feed(b'data: {"choices": [{"delta": {}, "finish_reason": "length"}]}\n\ndata: [DONE]\n\n')
    assert bare.tokens() == (0, 3)


class SlowBooks:
    """Real books whose writes take a while, and which note the thread that wrote."""

    def __init__(self, folder: Path) -> None:
        self.books, self.threads = UsageBooks(Database(folder)), set()

    def record(self, user: str, model: str, requests: int, prompt: int, completion: int) -> None:
        time.sleep(0.05)
        self.threads.add(threading.current_thread().name)
        self.books.add([Entry(user, model, requests, prompt, completion)])

    def rows(self, user: str | None = None) -> list:
        return self.books.rows(user)


def test_requests_are_booked_in_the_background_and_a_read_waits_for_them(tmp_path: Path) -> None:
    ledger = SlowBooks(tmp_path / "shared")
    u = Usage(ledger)
    t0 = time.monotonic()
    for i in range(20):
        u.request("alice" if i % 2 else "bob", "chat", (10, 2) if i % 4 else None)
    assert time.monotonic() - t0 < 0.05 * 20 / 2  # the caller (the IOLoop) never waited for a write
    rows = {(r["user"], r["model"]): r for r in u.rows()}
    assert rows[("alice", "chat")]["requests"] == 10 and rows[("bob", "chat")]["requests"] == 10
    assert rows[("alice", "chat")]["prompt_tokens"] == 100 and rows[("bob", "chat")]["completion_tokens"] == 10
    assert ledger.threads == {"xgen-usage"}
    assert [r["user"] for r in u.rows("alice")] == ["alice"]


def test_without_a_ledger_counts_stay_in_memory() -> None:
    u = Usage()
    u.request("alice", "chat", (1, 1))
    assert u.rows() == [{"user": "alice", "model": "chat", "requests": 1, "prompt_tokens": 1, "completion_tokens": 1,
                         "gpu_byte_seconds": 0, "host_byte_seconds": 0}]
