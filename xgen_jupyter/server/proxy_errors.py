"""The proxy's errors in OpenAI's shape, and what it answers for a route an engine does not serve."""

from __future__ import annotations

import json
from typing import Any

#: What to load for a route only some engines (or some load settings) serve.
_HOW = {
    "responses": "llama-server serves it: load the model on a llama-server backend (e.g. a preset "
                 '{"model": ..., "backend": "llama-server-cpu"})',
    "messages": "llama-server serves it: load the model on a llama-server backend (e.g. a preset "
                '{"model": ..., "backend": "llama-server-cpu"})',
    "rerank": 'load a reranker with server_type "rerank" on llama-server (e.g. a preset {"model": ..., '
              '"server_type": "rerank"}, or %xgen load MODEL --rerank)',
    "embeddings": 'load the model with server_type "embedding" (e.g. %xgen load MODEL --embedding)',
}


class OpenAIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        self.retry_after: int | None = None  # a full queue (429) says when to come back
        self.cause: dict[str, Any] | None = None  # a failed load on first request: the classified cause

    def to_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.cause:
            err["cause"] = self.cause
        return {"error": err}


def sse_error(message: str, code: str) -> bytes:
    """The last event of a stream whose engine went away (the openai client raises on it)."""
    body = {"error": {"message": message, "type": "server_error", "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def engine_message(body: bytes) -> str:
    """The engine's own words in an error body (OpenAI's, FastAPI's ``detail``, or the text)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace").strip()[:300]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if data.get("detail"):
            return str(data["detail"])
    return json.dumps(data)[:300]


def not_served(route: str, model: str, backend: str, status: int, body: bytes) -> OpenAIError:
    """An engine's 404/405 (no such route) or 501 (a route its load settings turned off), said in xgen's
    terms: which backend, and what to load instead."""
    how = _HOW.get(route, "another backend may serve it")
    what = "serves /v1/{route} only when loaded for it" if status == 501 else "does not serve /v1/{route}"
    message = (f"The engine of {model!r} ({backend}) {what.format(route=route)} (it answered {status}: "
               f"{engine_message(body)}); {how}.")
    return OpenAIError(404 if status in (404, 405) else 501, message,
                       "invalid_request_error" if status != 501 else "not_supported_error", "route_not_served")
