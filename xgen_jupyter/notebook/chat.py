"""``%%xgen chat NAME``: send the cell as a prompt, print tokens as they stream in."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..core.errors import XGenError
from .client_api import XGenClient
from .openai_client import client


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()  # a kernel sends flushed text at once: this is what makes tokens stream


def stream_chat(
    via: XGenClient,
    name: str,
    prompt: str,
    out: Callable[[str], None] = write_stdout,
    system: str | None = None,
    max_tokens: int = 256,
    temperature: float | None = None,
) -> str:
    """Stream one chat answer to ``out``, token by token; return the whole answer."""
    import openai

    if not prompt.strip():
        raise XGenError("the cell is empty", "write the prompt in the cell under %%xgen chat NAME")
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt.strip()})
    extra: dict[str, Any] = {} if temperature is None else {"temperature": temperature}
    api = client(name, via)
    parts: list[str] = []
    try:
        create: Any = api.chat.completions.create  # the plain-dict messages the API accepts
        stream = create(model=name, messages=messages, max_tokens=max_tokens, stream=True, **extra)
        for chunk in stream:
            if not chunk.choices:
                continue
            text = chunk.choices[0].delta.content or ""
            if text:
                parts.append(text)
                out(text)
    except openai.APIStatusError as exc:
        raise XGenError(
            f"chat with {name!r} failed: {_api_message(exc)}", f"check `%xgen ls` and `%xgen logs {name}`"
        ) from None
    except openai.APIConnectionError as exc:
        raise XGenError(f"chat with {name!r} failed: {exc}", f"see `%xgen logs {name}`") from None
    out("\n")
    return "".join(parts)


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", exc))
