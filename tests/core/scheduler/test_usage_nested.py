"""Token counts from usage objects with nested details (llama-server chat, OpenAI's Responses API)."""

from __future__ import annotations

from xgen_jupyter.core.scheduler.usage import Tail


def tokens(*chunks: bytes) -> tuple[int, int] | None:
    t = Tail()
    for c in chunks:
        t.feed(c)
    return t.tokens()


def test_responses_stream_usage_with_details() -> None:
    # The last event of a /v1/responses stream, as llama-server b11434 writes it, split across chunks.
    event = (b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":26,'
             b'"output_tokens":8,"total_tokens":34,"input_tokens_details":{"cached_tokens":0}}}}\n\n')
    assert tokens(event[:40], event[40:]) == (26, 8)


def test_chat_usage_with_prompt_token_details() -> None:
    body = (b'{"choices":[],"usage":{"completion_tokens":2,"prompt_tokens":9,"total_tokens":11,'
            b'"prompt_tokens_details":{"cached_tokens":0}}}')
    assert tokens(body) == (9, 2)


def test_flat_usage_still_read() -> None:
    assert tokens(b'{"usage":{"prompt_tokens":3,"completion_tokens":4}}') == (3, 4)
