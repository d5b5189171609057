"""The authenticated OpenAI-compatible proxy: ``xgen/v1/...`` routed by ``model`` = server name.

Bodies pass through untouched (upstream.py), but for a llama-server chat stream, which is asked for
its usage (ask_usage); the engine's API key replaces the client's credentials. Errors are in
OpenAI's shape (proxy_errors.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, NamedTuple

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..core.errors import ServerNotFound, XGenError
from ..core.process.server import ManagedServer
from ..core.scheduler.fairqueue import QueueClosed, QueueFull
from ..core.scheduler.usage import Tail
from .keyauth import KeyAuthHandler
from .proxy_errors import OpenAIError, sse_error
from .scheduling import as_openai, catalog_models, loaded, scheduler, user_of
from .upstream import EngineClient, ask_usage, forward

# "messages": Anthropic's Messages API, which llama-server serves natively; "responses" (OpenAI's
# Responses API) and "rerank" (llama-server with server_type "rerank"): an engine without the route
# answers a clear 404/501 (upstream.py).
ROUTES = ("chat/completions", "completions", "embeddings", "messages", "responses", "rerank")


class SharedEngine(NamedTuple):
    endpoint: str
    api_key: str


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
    """POST xgen/v1/{chat/completions,completions,embeddings,messages,responses,rerank}: to the named engine."""

    _queued: asyncio.Future[None] | None = None

    def initialize(self, name: str, route: str) -> None:
        super().initialize(name)
        self.route = route

    @property
    def http(self) -> EngineClient:
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
            server = sched.ready_now(model)
            if server is None:
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
            sched.forget_ready(model)
            err = as_openai(exc, model, OpenAIError)
            if not self._headers_written:
                raise err from None
            self.write(sse_error(err.message, err.code or "error"))  # the stream has begun: its last event
            await self.finish()
            return
        t0 = time.monotonic()
        server.touch()  # the core's idle unload (and eviction's LRU) counts from here
        tail = self.tail = self.tail or Tail()  # one tail per answer, shared with key accounting
        ask_usage(self, data, server.backend)
        try:
            if server.endpoint is None:  # it went away while this request waited for its slot
                raise OpenAIError(503, f"The model {model!r} went away while the request waited (state: "
                                       f"{server.state}).", "server_error", "engine_gone")
            # With the box service the grant brings the engine's endpoint and key: no second call.
            await self.forward(server, model, getattr(queue, "route", None))
        finally:
            server.touch()
            queue.release(time.monotonic() - t0)
            sched.usage.request(user, server.name, tail.tokens())

    async def forward_shared(self, engine: SharedEngine, model: str, user: str) -> None:
        make = getattr(self.core, "slot_queue", None)
        slot = None  # in-process: the owner's queue is in the owner's Jupyter server
        if make is not None:
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
        tail = self.tail = self.tail or Tail()
        try:
            await self.forward(engine, model)
        finally:
            if slot is not None:
                slot.release()
            # Booked to the requester under "owner/name", the name they asked for: `%xgen usage` then
            # tells it from a server of their own with the same name, and says whose engine served it.
            scheduler(self.settings).usage.request(user, model, tail.tokens())

    def on_connection_close(self) -> None:
        if self._queued is not None:
            self._queued.cancel()
        super().on_connection_close()

    async def forward(self, server: ManagedServer | SharedEngine, model: str, route: dict[str, Any] | None = None) -> None:
        # The box service's key is asked for per request (never kept): an unshare holds from the next one.
        if route and route.get("endpoint") and route.get("api_key"):
            endpoint, key = str(route["endpoint"]), str(route["api_key"])
        else:
            endpoint, key = str(server.endpoint), await self.lookup(getattr, server, "api_key")
        backend = getattr(server, "backend", None) or "an engine another user shared"
        await forward(self, self.http, endpoint, key, model, backend)
