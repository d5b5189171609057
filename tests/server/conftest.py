"""pytest-jupyter fixtures with the xgen extension enabled, auth enforced, and helpers."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter ships no entry point: pull its fixtures into this directory only.
from pytest_jupyter.jupyter_server import *  # noqa: F403


def on_server_loop(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on the Jupyter server's loop (``jp_asyncio_loop``).

    pytest-asyncio (auto mode, repo-wide) would run a bare ``async def`` test on its own loop,
    where the test server never answers.
    """
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.name != "jp_asyncio_loop"]
    params.append(inspect.Parameter("jp_asyncio_loop", inspect.Parameter.KEYWORD_ONLY))

    def test(*args: Any, jp_asyncio_loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        if "jp_asyncio_loop" in sig.parameters:
            kwargs["jp_asyncio_loop"] = jp_asyncio_loop
        jp_asyncio_loop.run_until_complete(fn(*args, **kwargs))

    test.__name__, test.__qualname__, test.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    test.__module__ = fn.__module__
    test.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return test


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    return d


@pytest.fixture  # type: ignore[no-redef]
def jp_server_config(tmp_path: Path, model_dir: Path) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"xgen_jupyter": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": False,
        },
        "XGen": {
            "state_dir": str(tmp_path / "xgen-state"),
            "shared_dir": str(tmp_path / "xgen-shared"),  # a registry of this test's own
            "model_dirs": [str(model_dir)],
            "ready_timeout": 120.0,
            "grace_period": 3.0,
        },
    }


@pytest.fixture
def api(jp_fetch: Callable[..., Any]) -> Callable[..., Any]:
    """``await api("GET", "servers")`` → (status, JSON); never raises on 4xx/5xx."""

    async def call(
        method: str,
        *path: str,
        body: Any = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        kw: dict[str, Any] = {"method": method, "raise_error": False, "params": params, "headers": headers}
        if method in ("POST", "PUT"):
            kw["body"] = raw if raw is not None else json.dumps(body)
        r = await jp_fetch("xgen", "api", *path, **kw)
        text = r.body.decode() if r.body else ""
        try:
            return r.code, json.loads(text) if text else None
        except ValueError:
            return r.code, text

    return call


async def next_json(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.read_message(), timeout)
    assert msg is not None, "websocket closed"
    return json.loads(msg)  # type: ignore[no-any-return,unused-ignore]


async def wait_state(ws: Any, name: str, states: set[str], timeout: float = 120.0) -> dict[str, Any]:
    """Read events until ``name`` reaches one of ``states``; return its Server dict."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = await next_json(ws, max(0.1, end - loop.time()))
        if msg["kind"] == "hello":
            for s in msg["servers"]:
                if s["name"] == name and s["state"] in states:
                    return s  # type: ignore[no-any-return,unused-ignore]
        elif msg["kind"] == "state" and msg["server"] == name and msg["data"]["state"] in states:
            return msg["data"]  # type: ignore[no-any-return,unused-ignore]
