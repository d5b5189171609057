"""The proxy's side of core/scheduler: one Scheduler per Jupyter server, the requesting user,
and scheduler errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
import getpass
import re
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any

from ..core.errors import XGenError
from ..core.process.manager import name_for
from ..core.scheduler.catalog import Catalog, read_presets
from ..core.scheduler.fairqueue import QueueClosed, QueueFull
from ..core.scheduler.router import LoadFailed, NotReady, Scheduler, UnknownModel


def presets_of(core: Any) -> tuple[dict[str, dict[str, Any]], list[str]]:
    cfg = core.config
    shared = cfg.shared_dir
    return read_presets(cfg.presets, Path(shared) if shared else None, core.request)


def scheduler(settings: dict[str, Any]) -> Scheduler:
    """The Jupyter server's scheduler, made on first use (the IOLoop is single-threaded)."""
    sched = settings.get("xgen_scheduler")
    if sched is None:
        core = settings["xgen_core"]
        catalog = Catalog(core.models, lambda: presets_of(core))
        sched = settings["xgen_scheduler"] = Scheduler(core, catalog, core.config.queue_limit)
    return sched


_ANON = re.compile(r"[0-9a-f]{32}")

#: While a model loads on first request the client hears from us after KEEPALIVE_AFTER seconds, then
#: every KEEPALIVE_EVERY (under httpx's default 5 s read timeout). A stream gets its headers and SSE
#: comments (clients ignore them), then the tokens. A plain request gets interim "100 Continue"
#: responses: HTTP/1.1 clients skip them (httpx, so the openai and anthropic clients; http.client,
#: so requests; curl) and each restarts their read timeout, while the final status stays open, so a
#: load that fails is still the 503 with its cause, which the openai client raises. (A 200 committed
#: early with whitespace before the body would turn that failure into a "completion" without choices.)
KEEPALIVE_AFTER, KEEPALIVE_EVERY = 2.0, 4.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


async def loaded(handler: Any, load: Coroutine[Any, Any, Any], stream: bool) -> Any:
    """Await ``load`` (Scheduler.server_for), keeping the client's connection alive while it runs."""
    return await kept_alive(handler, load, stream, KEEPALIVE_AFTER)


async def kept_alive(handler: Any, work: Awaitable[Any], stream: bool, after: float) -> Any:
    """Await ``work``; past ``after`` seconds the client hears from us. Once it has, ``handler.kept_alive``
    says so (upstream.py keeps it alive until the engine's answer begins too: a cold engine's first
    answer can take seconds more)."""
    task = asyncio.ensure_future(work)
    timeout = after
    try:
        while not (await asyncio.wait({task}, timeout=timeout))[0]:
            if stream:
                if not handler._headers_written:
                    handler.set_status(200)
                    handler.set_header("Content-Type", "text/event-stream")
                    handler.set_header("Cache-Control", "no-cache")
                handler.write(b": xgen: loading the model\n\n")
                await handler.flush()  # StreamClosedError: the client left
            elif handler.request.version == "HTTP/1.1":  # HTTP/1.0 has no interim responses
                # Before tornado writes the response, as tornado itself answers "Expect: 100-continue".
                await handler.request.connection.stream.write(CONTINUE)
            handler.kept_alive = stream
            timeout = KEEPALIVE_EVERY
    except BaseException:
        task.cancel()  # this request's wait only: a load itself is shared and goes on
        raise
    return task.result()


def user_of(handler: Any) -> str:
    """Who asks, for the fair queues and the accounting. Jupyter's shared token names nobody (it makes
    a random "Anonymous ..." user per request): that is the server's own user."""
    user = handler.current_user
    name = str(getattr(user, "username", None) or "")
    if not name or (str(getattr(user, "name", "")).startswith("Anonymous ") and _ANON.fullmatch(name)):
        core = handler.settings["xgen_core"]  # the owner its loads are booked to (registry, service)
        registry = getattr(core, "registry", None)
        owner = registry.user if registry is not None else getattr(core, "hello", {}).get("user")
        return str(owner or getattr(core.config, "user", None) or getpass.getuser())
    return name


def as_openai(exc: Exception, model: str, error_cls: type[Any]) -> Any:
    """The OpenAIError (proxy.py's class, passed in) a scheduler failure answers with."""
    if isinstance(exc, UnknownModel):
        return error_cls(404, str(exc), code="model_not_found")
    if isinstance(exc, QueueFull):
        err = error_cls(429, f"Too many requests are waiting for {model!r} ({exc.limit}); retry in "
                             f"{exc.retry_after} s.", "rate_limit_error", "queue_full")
        err.retry_after = exc.retry_after
        return err
    if isinstance(exc, NotReady):
        return error_cls(503, str(exc), "server_error", "model_not_ready")
    if isinstance(exc, QueueClosed):
        return error_cls(503, f"The model {model!r} went away while the request waited: {exc}", "server_error",
                         "engine_gone")
    if isinstance(exc, LoadFailed):
        err = error_cls(503, str(exc), "server_error", "model_load_failed")
        err.cause = exc.cause
        return err
    assert isinstance(exc, XGenError)
    status = exc.status if 400 <= exc.status < 600 else 400
    return error_cls(status, f"Loading {model!r} was refused: {exc}",
                     "server_error" if status >= 500 else "invalid_request_error", type(exc).__name__)


async def catalog_models(settings: dict[str, Any], loaded: set[str], allows: Any) -> list[dict[str, Any]]:
    """OpenAI model entries for the catalog names not loaded (``loaded``: the ready servers' names)."""
    sched = scheduler(settings)
    entries = await asyncio.to_thread(sched.catalog.entries)
    out = []
    for name, entry in sorted(entries.items()):
        try:
            server = name_for(sched.core.request(entry["request"]))
        except XGenError:
            continue
        if name in loaded or server in loaded or not allows(name):
            continue
        out.append({"id": name, "object": "model", "created": 0, "owned_by": "xgen", "loaded": False,
                    "catalog": entry["kind"], "size": entry["size"]})
    return out
