"""WS xgen/api/events: a hello snapshot, every state change and loading progress, GPU samples."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from ...boxd.remote import where
from ...core.api import STREAMED_EVENTS, gpus_message, hello_message
from ...core.errors import RequestError, XGenError
from ...core.process.manager import Event
from .pulls import pull_jobs
from .wsbase import XGenWebSocket

MIN_INTERVAL = 0.1  # seconds: faster sampling only burns the server's CPU
MAX_INTERVAL = 3600.0


def parse_interval(raw: Any) -> float:
    if isinstance(raw, bool):
        raise RequestError(f"interval must be a number of seconds, not {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RequestError(f"interval must be a number of seconds, not {raw!r}") from None
    if value != value or value < 0 or value > MAX_INTERVAL:  # NaN, negative, absurd
        raise RequestError(
            f"interval={raw!r} is out of range", f"use 0 (off) or {MIN_INTERVAL} to {MAX_INTERVAL}"
        )
    return 0.0 if value == 0 else max(MIN_INTERVAL, value)


class EventsWebSocket(XGenWebSocket):
    _unsubscribe: Callable[[], None] | None = None
    _sampler_task: asyncio.Task[None] | None = None
    _unfollow_pulls: Callable[[], None] | None = None

    async def pre_get(self, *args: Any, **kwargs: Any) -> None:
        default = self.settings.get("xgen_gpu_sample_interval", 2.0)
        self.interval = parse_interval(self.get_query_argument("interval", str(default)))
        self.wake = asyncio.Event()

    async def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self.loop = asyncio.get_running_loop()
        try:
            hardware = await self.lookup(self.core.hardware, light=False)  # first detection can take seconds
        except XGenError as exc:  # the box service does not answer: say so (its socket, a hint), then close
            self.send_json({"kind": "error", **exc.to_dict()})
            self.close(1011, "xgen: the box service does not answer")
            return
        if self.ws_connection is None or self.ws_connection.is_closing():
            return  # closed meanwhile: on_close already ran, so subscribing now would leak

        def on_event(event: Event) -> None:  # on a manager thread
            if event.kind in STREAMED_EVENTS:
                self.send_threadsafe(event.to_dict())

        # Subscribe before the snapshot: a change racing the hello is held and sent after it, in order.
        self.hold()
        self._unsubscribe = self.core.manager.subscribe(on_event)
        self._unfollow_pulls = pull_jobs(self.settings).subscribe(self.send_threadsafe)  # model pulls' progress
        try:
            servers = [s.to_dict() for s in await self.lookup(self.core.manager.servers)]
        except XGenError as exc:
            self.send_json({"kind": "error", **exc.to_dict()})
            self.close(1011, "xgen: the box service does not answer")
            return
        # xgen_core: where this server's models run (the box service and who we are to it, or here).
        self.send_json({**hello_message(servers, hardware.to_dict()), "xgen_core": where(self.core)})
        self.release()
        self._sampler_task = asyncio.create_task(self._sample_loop())

    async def _sample_loop(self) -> None:
        sampler = self.settings["xgen_gpu_sampler"]
        while self.ws_connection is not None and not self.ws_connection.is_closing():
            if self.interval <= 0:
                await self.wake.wait()
            else:
                try:
                    await asyncio.wait_for(self.wake.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass
            if self.wake.is_set():  # a new interval: restart the wait with it
                self.wake.clear()
                continue
            try:
                gpus = await asyncio.to_thread(sampler)
            except Exception as exc:  # a flaky driver must not kill the socket
                self.send_json({"kind": "error", "message": f"GPU sampling failed: {exc}"})
                continue
            self.send_json(gpus_message([g.to_dict() for g in gpus]))

    def on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            if not isinstance(data, dict) or "interval" not in data:
                raise RequestError('messages must look like {"interval": <seconds>}')
            self.interval = parse_interval(data["interval"])
        except ValueError:
            self.send_json({"kind": "error", "message": "messages must be JSON"})
            return
        except RequestError as exc:
            self.send_json({"kind": "error", **exc.to_dict()})
            return
        self.wake.set()

    def on_close(self) -> None:
        if self._unfollow_pulls is not None:
            self._unfollow_pulls()
            self._unfollow_pulls = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._sampler_task is not None:
            self._sampler_task.cancel()
            self._sampler_task = None
