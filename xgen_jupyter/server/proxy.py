"""The authenticated OpenAI-compatible proxy: ``xgen/v1/...`` routed by ``model`` = server name.

Bodies pass through untouched, chunk by chunk as the engine writes them (whatever the
client's Accept header says); the engine's API key replaces the client's credentials.
Connections to the engines are pooled by one shared httpx.AsyncClient.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, NamedTuple

import httpx
from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..core.errors import ServerNotFound, XGenError
from ..core.process.server import ManagedServer
from ..core.scheduler.fairqueue import QueueClosed, QueueFull
from ..core.scheduler.usage import Tail
from .keyauth import KeyAuthHandler
from .scheduling import as_openai, catalog_models, loaded, scheduler, user_of

# "messages": Anthropic's Messages API, which llama-server serves natively (other engines answer 404).
ROUTES = ("chat/completions", "completions", "embeddings", "messages")
# Headers that describe one hop, the engine itself, or its credentials: never passed on.
_DROP_UPSTREAM = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date", "set-cookie",
     "www-authenticate", "proxy-authenticate", "trailer", "upgrade"}
)


class SharedEngine(NamedTuple):
    endpoint: str
    api_key: str


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


class ProxyBase(KeyAuthHandler):
    """Errors in OpenAI's shape, so OpenAI clients show the message. Opened by a Jupyter login or
    token, or by an xgen API key (keyauth.py), which opens these handlers and no others."""

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        super().send_error(exc.status if isinstance(exc, OpenAIError) else status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if not isinstance(exc, OpenAIError):
            message = getattr(exc, "message", None) or getattr(exc, "log_message", None) or str(status_code)
            kind = "authentication_error" if status_code in (401, 403) else "invalid_request_error"
            exc = OpenAIError(status_code, message, kind if status_code < 500 else "server_error")
        if exc.retry_after is not None:
            self.set_header("Retry-After", str(exc.retry_after))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(exc.to_dict()))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, OpenAIError):
            self.log.info("xgen proxy: %s -> %s: %s", self.request.path, value.status, value.message)
        else:
            super().log_exception(typ, value, tb)

    def ready_server(self, name: str) -> ManagedServer:
        try:
            server = self.core.manager.get(name)
        except ServerNotFound:
            loaded = ", ".join(s.name for s in self.core.manager.servers()) or "none"
            raise OpenAIError(404, f"The model {name!r} does not exist: no xgen server has that name "
                                   f"(loaded: {loaded}). Load it with %xgen load or POST xgen/api/servers.",
                              code="model_not_found") from None
        if server.state != "ready" or server.endpoint is None:
            why = f": {server.error.get('summary')}" if server.error else ""
            raise OpenAIError(503, f"The model {name!r} is not ready (state: {server.state}{why}).",
                              "server_error", "model_not_ready")
        server.touch()  # the core's idle unload counts from here
        return server

    def shared_server(self, name: str) -> SharedEngine:
        """``owner/name``: a server another user of this box shared with us (core/box/shares.py)."""
        owner, _, sname = name.partition("/")
        try:
            endpoint, key = self.core.shared(owner, sname)
        except ServerNotFound as exc:
            raise OpenAIError(404, f"The model {name!r} does not exist: {exc}", code="model_not_found") from None
        except XGenError as exc:
            raise OpenAIError(503, f"The model {name!r} is not available: {exc}", "server_error",
                              "model_not_ready") from None
        return SharedEngine(endpoint, key)


class ModelsProxyHandler(ProxyBase):
    """GET xgen/v1/models[/name]: the ready servers, as OpenAI lists models."""

    @staticmethod
    def entry(s: ManagedServer) -> dict[str, Any]:
        return {"id": s.name, "object": "model", "created": int(s.created_at), "owned_by": "xgen",
                "server_type": s.request.server_type, "backend": s.backend}

    @web.authenticated
    @authorized
    async def get(self, name: str | None = None) -> None:
        if name:
            self.check_key_model(name)
            self.finish(json.dumps(self.entry(await self.lookup(self.ready_server, name))))
            return
        servers = await self.lookup(self.core.manager.servers)  # the box service's: off the IOLoop
        ready = [{**self.entry(s), "loaded": True} for s in servers if s.state == "ready" and self.key_allows(s.name)]
        # Then every catalog name not loaded: a request for one loads it (core/scheduler).
        ready += await catalog_models(self.settings, {e["id"] for e in ready}, self.key_allows)
        self.finish(json.dumps({"object": "list", "data": ready}))


class CompletionsProxyHandler(ProxyBase):
    """POST xgen/v1/{chat/completions,completions,embeddings}: forwarded to the named engine."""

    _queued: asyncio.Future[None] | None = None

    def initialize(self, name: str, route: str) -> None:
        super().initialize(name)
        self.route = route

    @property
    def http(self) -> httpx.AsyncClient:
        return self.settings["xgen_http"]

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            data = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise OpenAIError(400, f"The request body is not valid JSON: {exc}") from None
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, str) or not model:
            raise OpenAIError(400, "The request body must be a JSON object with a 'model' (the xgen server name).",
                              code="missing_model")
        self.check_key_model(model)  # an API key made for other models: 403
        sched = scheduler(self.settings)
        user = user_of(self)
        if "/" in model:  # owner/name: a server another user shared with us, unless a catalog name
            try:
                engine = await self.lookup(self.shared_server, model)
            except OpenAIError as exc:
                if exc.status != 404 or await asyncio.to_thread(sched.catalog.request_for, model) is None:
                    raise
            else:  # with the box service, in its owner's fair queue like the owner's own requests
                await self.forward_shared(engine, model, user)
                return
        try:
            # A catalog name not loaded: loaded now and waited for (a stream hears keep-alive comments meanwhile).
            server = await loaded(self, sched.server_for(model, user), data.get("stream") is True)
            queue = sched.queue(server)
            if not queue.try_acquire(user):  # beyond the engine's slots: wait fairly, or 429
                self._queued = asyncio.ensure_future(queue.acquire(user))
                try:
                    await self._queued
                finally:
                    self._queued = None
        except asyncio.CancelledError:
            return  # the client left while queued: dequeued (on_connection_close)
        except StreamClosedError:
            return  # the client left while its model loaded (the load goes on for the others)
        except (XGenError, QueueFull, QueueClosed) as exc:
            err = as_openai(exc, model, OpenAIError)
            if not self._headers_written:
                raise err from None
            self.write(sse_error(err.message, err.code or "error"))  # the stream has begun: its last event
            await self.finish()
            return
        t0 = time.monotonic()
        server.touch()  # the core's idle unload (and eviction's LRU) counts from here
        tail = self.tail = self.tail or Tail()  # one tail per answer, shared with key accounting
        try:
            if server.endpoint is None:  # it went away while this request waited for its slot
                raise OpenAIError(503, f"The model {model!r} went away while the request waited (state: "
                                       f"{server.state}).", "server_error", "engine_gone")
            await self.forward(server, model)
        finally:
            server.touch()
            queue.release(time.monotonic() - t0)
            sched.usage.request(user, server.name, tail.tokens())

    async def forward_shared(self, engine: SharedEngine, model: str, user: str) -> None:
        make = getattr(self.core, "slot_queue", None)
        if make is None:  # in-process: the owner's queue is in the owner's Jupyter server
            await self.forward(engine, model)
            return
        slot = make(model)
        self._queued = asyncio.ensure_future(slot.acquire(user))
        try:
            await self._queued
        except asyncio.CancelledError:
            return  # the client left while queued: dequeued in the service
        except (XGenError, QueueFull, QueueClosed) as exc:
            raise as_openai(exc, model, OpenAIError) from None
        finally:
            self._queued = None
        try:
            await self.forward(engine, model)
        finally:
            slot.release()

    def on_connection_close(self) -> None:
        if self._queued is not None:
            self._queued.cancel()
        super().on_connection_close()

    async def forward(self, server: ManagedServer | SharedEngine, model: str) -> None:
        # The box service's key is asked for per request (never kept): an unshare holds from the next one.
        key = await self.lookup(getattr, server, "api_key")
        headers = {
            "Authorization": f"Bearer {key}",  # the client's credentials and cookies stay here
            "Content-Type": self.request.headers.get("Content-Type", "application/json"),
            "Accept": self.request.headers.get("Accept", "*/*"),
            "Accept-Encoding": "identity",  # compressed SSE would be buffered by someone
        }
        request = self.http.build_request("POST", f"{server.endpoint}/v1/{self.route}", content=self.request.body,
                                          headers=headers)
        try:
            try:
                upstream = await self.http.send(request, stream=True)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A pooled keep-alive connection the engine had just closed: nothing was answered,
                # so send it once more on a fresh connection.
                request = self.http.build_request("POST", request.url, content=self.request.body, headers=headers)
                upstream = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise OpenAIError(502, f"The engine of {model!r} did not answer: {type(exc).__name__}: {exc}",
                              "server_error", "engine_unreachable") from None
        try:
            await self.relay(upstream, model)
        finally:
            await upstream.aclose()

    async def relay(self, upstream: httpx.Response, model: str) -> None:
        stream = getattr(self.request.connection, "stream", None)
        if stream is not None:
            # Small SSE chunks must leave at once: Nagle + the client's delayed ACK cost ~40 ms.
            stream.set_nodelay(True)
        self.set_status(upstream.status_code)
        for key, value in upstream.headers.multi_items():
            if key.lower() not in _DROP_UPSTREAM:
                self.set_header(key, value)  # engines send no repeated headers but Set-Cookie
        is_sse = upstream.headers.get("content-type", "").startswith("text/event-stream")
        try:
            async for chunk in upstream.aiter_raw():
                self.write(chunk)
                await self.flush()  # each chunk goes out as it came in (and waits for slow clients)
        except StreamClosedError:  # the client left: closing upstream stops the generation
            return
        except httpx.HTTPError as exc:
            self.log.warning("xgen proxy: engine of %r broke off mid-response: %s", model, exc)
            if is_sse:
                self.write(sse_error(f"The engine of {model!r} stopped mid-stream ({type(exc).__name__}); "
                                     "see its log in xgen.", "engine_died"))
        try:
            await self.finish(set_content_type=upstream.headers.get("content-type", "application/json"))
        except StreamClosedError:
            pass
