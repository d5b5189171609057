"""The proxy's hop to an engine: one POST over the shared pooled client, the answer relayed to the
client chunk by chunk as the engine writes it (whatever the client's Accept header says)."""

from __future__ import annotations

from typing import Any

import httpx
from tornado.iostream import StreamClosedError

from . import scheduling
from .proxy_errors import OpenAIError, not_served, sse_error

# Headers that describe one hop, the engine itself, or its credentials: never passed on.
_DROP_UPSTREAM = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date", "set-cookie",
     "www-authenticate", "proxy-authenticate", "trailer", "upgrade"}
)
#: Routes only some engines serve: their 404/405 means "no such route here", said with what to load.
OPTIONAL_ROUTES = frozenset({"messages", "responses", "rerank"})


async def forward(handler: Any, http: httpx.AsyncClient, endpoint: str, key: str, model: str,
                  backend: str) -> None:
    """POST the client's body to ``endpoint``/v1/``handler.route`` and relay the answer."""
    route = handler.route
    headers = {
        "Authorization": f"Bearer {key}",  # the client's credentials and cookies stay here
        "Content-Type": handler.request.headers.get("Content-Type", "application/json"),
        "Accept": handler.request.headers.get("Accept", "*/*"),
        "Accept-Encoding": "identity",  # compressed SSE would be buffered by someone
    }
    url, body = f"{endpoint}/v1/{route}", handler.request.body
    try:
        try:
            send = http.send(http.build_request("POST", url, content=body, headers=headers), stream=True)
            alive = getattr(handler, "kept_alive", None)  # a first request, kept alive while its model loaded
            upstream = await (send if alive is None else
                              scheduling.kept_alive(handler, send, alive, scheduling.KEEPALIVE_EVERY))
        except StreamClosedError:
            return  # the client left while the engine's first answer began
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # A pooled keep-alive connection the engine had just closed: nothing was answered,
            # so send it once more on a fresh connection.
            upstream = await http.send(http.build_request("POST", url, content=body, headers=headers), stream=True)
    except httpx.HTTPError as exc:
        raise OpenAIError(502, f"The engine of {model!r} did not answer: {type(exc).__name__}: {exc}",
                          "server_error", "engine_unreachable") from None
    try:
        status = upstream.status_code
        if status == 501 or (status in (404, 405) and route in OPTIONAL_ROUTES):
            raise not_served(route, model, backend, status, await upstream.aread())
        await relay(handler, upstream, model)
    finally:
        await upstream.aclose()


async def relay(handler: Any, upstream: httpx.Response, model: str) -> None:
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None:
        # Small SSE chunks must leave at once: Nagle + the client's delayed ACK cost ~40 ms.
        stream.set_nodelay(True)
    handler.set_status(upstream.status_code)
    for key, value in upstream.headers.multi_items():
        if key.lower() not in _DROP_UPSTREAM:
            handler.set_header(key, value)  # engines send no repeated headers but Set-Cookie
    is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
    try:
        async for chunk in upstream.aiter_raw():
            handler.write(chunk)
            await handler.flush()  # each chunk goes out as it came in (and waits for slow clients)
    except StreamClosedError:  # the client left: closing upstream stops the generation
        return
    except httpx.HTTPError as exc:
        handler.log.warning("xgen proxy: engine of %r broke off mid-response: %s", model, exc)
        if is_sse:
            handler.write(sse_error(f"The engine of {model!r} stopped mid-stream ({type(exc).__name__}); "
                                    "see its log in xgen.", "engine_died"))
    try:
        await handler.finish(set_content_type=upstream.headers.get("content-type", "application/json"))
    except StreamClosedError:
        pass
