"""upstream.ask_usage / without_usage on llama-server b11434's own bytes (recorded from
~/.cache/xgen/engines/llama-server-cpu/bin/llama-server, a chat stream with include_usage): when the
proxy asked for usage the client did not, the usage event is counted and cut out however the engine's
writes split the stream; everything else passes byte for byte. The engine end to end:
test_usage_streams_engine.py."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from xgen_jupyter.core.scheduler.usage import Tail
from xgen_jupyter.server.upstream import ask_usage, without_usage

HEAD = b'"created":1795989612,"id":"chatcmpl-U4nk","model":"gemma.gguf","system_fingerprint":"b11434-unknown",' \
       b'"object":"chat.completion.chunk"'
TEXT = b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"im"}}],' + HEAD + b'}\n\n'
END = b'data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],' + HEAD + b'}\n\n'
USAGE = b'data: {"choices":[],' + HEAD + b',"usage":{"completion_tokens":3,"prompt_tokens":25,"total_tokens":28,' \
        b'"prompt_tokens_details":{"cached_tokens":0}},"timings":{"cache_n":0,"prompt_n":25,"predicted_n":3}}\n\n'
DONE = b"data: [DONE]\n\n"
STREAM = TEXT + TEXT + END + USAGE + DONE


def relay(chunks: list[bytes]) -> tuple[bytes, Any]:
    """What upstream.relay writes to the client for these engine reads (its loop, without the sockets)."""
    handler = SimpleNamespace(tail=Tail())
    out, rest = b"", b""
    for chunk in chunks:
        chunk, rest = without_usage(handler, rest + chunk if rest else chunk)
        out += chunk
    return out + rest, handler.tail


@pytest.mark.parametrize("cut", [None, 5, len(TEXT) + 1, len(STREAM) - len(DONE) - len(USAGE) // 2,
                                 len(STREAM) - len(DONE) - 1, len(STREAM) - 3])
def test_the_usage_event_is_counted_not_sent_however_the_reads_fall(cut: int | None) -> None:
    chunks = [STREAM] if cut is None else [STREAM[:cut], STREAM[cut:]]
    out, tail = relay(chunks)
    assert out == TEXT + TEXT + END + DONE
    assert tail.usage() == (25, 3)


def test_one_byte_reads() -> None:
    out, tail = relay([STREAM[i:i + 1] for i in range(len(STREAM))])
    assert out == TEXT + TEXT + END + DONE and tail.usage() == (25, 3)


def test_an_unfinished_last_event_is_the_clients() -> None:
    out, tail = relay([TEXT, b'data: {"choices":[],"usage":{"prompt'])  # the engine broke off
    assert out == TEXT + b'data: {"choices":[],"usage":{"prompt' and tail.usage() is None


def asked(data: dict[str, Any], backend: str = "llama-server-cpu", route: str = "chat/completions") -> Any:
    handler = SimpleNamespace(route=route)
    ask_usage(handler, data, backend)
    return json.loads(handler.engine_body) if getattr(handler, "hide_usage", False) else None


def test_only_llama_server_chat_streams_that_did_not_ask_get_include_usage() -> None:
    chat = {"model": "m", "messages": [], "stream": True}
    assert asked(chat) == {**chat, "stream_options": {"include_usage": True}}
    assert asked({**chat, "stream_options": {"include_usage": False, "x": 1}})["stream_options"] == \
        {"include_usage": True, "x": 1}
    assert asked({**chat, "stream_options": {"include_usage": True}}) is None  # asked: sent and relayed as is
    assert asked(chat, backend="llama-cpp-python") is None  # it ignores stream_options (0.3.36)
    assert asked(chat, route="completions") is None  # llama-server puts usage in its last completion event
    assert asked({**chat, "stream": False}) is None and asked({**chat, "stream_options": "x"}) is None
