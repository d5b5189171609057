"""Usage counting from the engine's own numbers, and memory-seconds from state events."""

from __future__ import annotations

import json
import time

from xgen_jupyter.core.process.events import Event
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


def test_requests_and_memory_seconds_per_user_and_model() -> None:
    u = Usage()
    u.request("alice", "chat", (10, 2))
    u.request("alice", "chat", None)
    u.request("bob", "chat", (1, 1))
    plan = {"memory": {"gpu_total": 1000, "host_total": 10}}
    u.on_event(Event("state", "chat", {"state": "ready", "plan": plan, "owner": "alice"}))
    time.sleep(0.05)
    live = u.snapshot()[("alice", "chat")]
    assert (live.requests, live.prompt_tokens, live.completion_tokens) == (2, 10, 2)
    assert live.gpu_byte_seconds >= 1000 * 0.05 and live.host_byte_seconds >= 10 * 0.05
    u.on_event(Event("state", "chat", {"state": "stopped"}))
    done = u.snapshot()[("alice", "chat")].gpu_byte_seconds
    time.sleep(0.02)
    assert u.snapshot()[("alice", "chat")].gpu_byte_seconds == done  # stopped: no longer counting
    assert u.snapshot()[("bob", "chat")].gpu_byte_seconds == 0
