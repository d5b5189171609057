"""The proxy's hop to an engine: one POST over the shared pooled client, the answer relayed to the
client chunk by chunk as the engine writes it (whatever the client's Accept header says).

The client is aiohttp's: its C parser costs about half the CPU per relayed chunk of httpx's (measured
on the default engine's streams here, benchmarks/results/first_request.md), and on a CPU box every
millisecond the proxy spends is taken from the engine's decode.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
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
#: llama-server's usage event when we asked for it: ``{"choices":[],...,"usage":{...}}`` (compact JSON).
_NO_CHOICES = b'"choices":[]'


def ask_usage(handler: Any, data: dict[str, Any], backend: str) -> None:
    """A chat stream without ``stream_options.include_usage`` (LiteLLM, so Jupyter AI, never asks)
    gets it added on the way to llama-server, which then ends with an event of ``usage`` and no
    choices: counted (handler.tail) but not relayed, as the client did not ask for it and strict
    clients choke on empty choices. Other engines keep today's counting (llama-cpp-python ignores it)."""
    opts = data.get("stream_options")
    if (handler.route != "chat/completions" or not backend.startswith("llama-server") or data.get("stream") is not True
            or not isinstance(opts, dict | None) or (opts or {}).get("include_usage")):
        return
    handler.engine_body = json.dumps({**data, "stream_options": {**(opts or {}), "include_usage": True}}).encode()
    handler.hide_usage = True


def without_usage(handler: Any, data: bytes) -> tuple[bytes, bytes]:
    """(the whole SSE events of ``data`` less the usage event we asked for, the unfinished rest)."""
    end = data.rfind(b"\n\n") + 2
    if end < 2:
        return b"", data
    done, rest = data[:end], data[end:]
    if _NO_CHOICES in done:  # one bytes search per chunk: the stream's other events pass untouched
        kept = []
        for event in done.split(b"\n\n"):
            if _NO_CHOICES in event and b'"usage"' in event:
                if handler.tail is not None:
                    handler.tail.feed(event + b"\n\n")  # counted, not sent
            else:
                kept.append(event)
        done = b"\n\n".join(kept)
    return done, rest


class EngineClient:
    """One pooled aiohttp session for every engine, made on first use (on the IOLoop, as aiohttp wants)."""

    def __init__(self, read_timeout: float, max_connections: int) -> None:
        self.read_timeout, self.max_connections = read_timeout, max_connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Keep-alive saves a TCP handshake per request; trust_env off: an HTTP(S)_PROXY in the
            # environment must not see engine traffic; the read timeout is per read, not per answer.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=self.read_timeout),
                auto_decompress=False, trust_env=False, skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def forward(handler: Any, http: EngineClient, endpoint: str, key: str, model: str, backend: str) -> None:
    """POST the client's body to ``endpoint``/v1/``handler.route`` and relay the answer."""
    route = handler.route
    headers = {
        "Authorization": f"Bearer {key}",  # the client's credentials and cookies stay here
        "Content-Type": handler.request.headers.get("Content-Type", "application/json"),
        "Accept": handler.request.headers.get("Accept", "*/*"),
        "Accept-Encoding": "identity",  # compressed SSE would be buffered by someone
    }
    body = getattr(handler, "engine_body", None) or handler.request.body  # ask_usage's, else the client's
    url, session = f"{endpoint}/v1/{route}", http.session()
    try:
        try:
            send = session.post(url, data=body, headers=headers)
            alive = getattr(handler, "kept_alive", None)  # a first request, kept alive while its model loaded
            upstream = await (send if alive is None else
                              scheduling.kept_alive(handler, send, alive, scheduling.KEEPALIVE_EVERY))
        except StreamClosedError:
            return  # the client left while the engine's first answer began
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            # A pooled keep-alive connection the engine had just closed: nothing was answered,
            # so send it once more on a fresh connection.
            upstream = await session.post(url, data=body, headers=headers)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise OpenAIError(502, f"The engine of {model!r} did not answer: {type(exc).__name__}: {exc}",
                          "server_error", "engine_unreachable") from None
    try:
        status = upstream.status
        if status == 501 or (status in (404, 405) and route in OPTIONAL_ROUTES):
            raise not_served(route, model, backend, status, await upstream.read())
        await relay(handler, upstream, model)
    finally:
        upstream.close()  # a whole answer was read: its connection is back in the pool already


async def relay(handler: Any, upstream: aiohttp.ClientResponse, model: str) -> None:
    stream = getattr(handler.request.connection, "stream", None)
    if stream is not None:
        # Small SSE chunks must leave at once: Nagle + the client's delayed ACK cost ~40 ms.
        stream.set_nodelay(True)
    handler.set_status(upstream.status)
    for key, value in upstream.headers.items():
        if key.lower() not in _DROP_UPSTREAM:
            handler.set_header(key, value)  # engines send no repeated headers but Set-Cookie
    ctype = upstream.headers.get("Content-Type", "")
    sse = ctype.startswith("text/event-stream")
    hide, rest = getattr(handler, "hide_usage", False) and sse, b""
    try:
        if sse:
            # The status and headers leave now, as the engine's did: the client reads them while the
            # engine works on the prompt, not on the way to the first token (~0.3 ms of TTFT).
            await handler.flush()
        async for chunk in upstream.content.iter_any():
            if hide:
                chunk, rest = without_usage(handler, rest + chunk if rest else chunk)
                if not chunk:
                    continue
            handler.write(chunk)
            await handler.flush()  # each chunk goes out as it came in (and waits for slow clients)
    except StreamClosedError:  # the client left: closing upstream stops the generation
        return
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        handler.log.warning("xgen proxy: engine of %r broke off mid-response: %s", model, exc)
        if rest:
            handler.write(rest)
            rest = b""
        if ctype.startswith("text/event-stream"):
            handler.write(sse_error(f"The engine of {model!r} stopped mid-stream ({type(exc).__name__}); "
                                    "see its log in xgen.", "engine_died"))
    if rest:
        handler.write(rest)  # an unfinished last event: the client's, as the engine wrote it
    try:
        await handler.finish(set_content_type=ctype or "application/json")
    except StreamClosedError:
        pass
