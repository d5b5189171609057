"""ProcessManager: names, lifecycle, fallback and events for every engine this process runs."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..adapters.base import BackendAdapter, Progress
from ..errors import ServerConflict, ServerNotFound, XGenError
from ..planning.plan import LaunchPlan
from ..planning.request import LoadRequest
from .causes import Cause, classify
from .engine import EngineProcess
from .logbuffer import LogBuffer, remover
from .ports import free_port
from .readiness import wait_until_ready
from .server import ACTIVE, FINAL, Attempt, ManagedServer, State
from .spawn import Spawner

MAX_SAME_BACKEND_RETRIES = 2


class Planning(Protocol):
    def plan(self, request: LoadRequest, name: str, exclude: frozenset[str] = ...) -> LaunchPlan: ...

    def adapter(self, backend: str) -> BackendAdapter: ...


class Admission(Protocol):
    """Box-wide admission (core/box): consulted before any engine of a plan starts."""

    def admit(self, server: ManagedServer) -> None:
        """Reserve what ``server.plan`` needs, or raise XGenError saying why not."""
        ...


@dataclass(frozen=True)
class Event:
    """A state change, loading progress or log line of one server."""

    kind: str  # state | progress | log
    server: str
    data: dict[str, Any]
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.server, "data": self.data, "time": self.time}


Listener = Callable[[Event], None]


def name_for(request: LoadRequest) -> str:
    if request.name:
        return request.name
    stem = Path(request.model.rstrip("/")).name
    stem = re.sub(r"\.gguf$", "", stem, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "model"
    return stem[:64] + ("-embed" if request.server_type == "embedding" and not stem.endswith("embed") else "")


class ProcessManager:
    def __init__(
        self,
        planning: Planning,
        *,
        log_dir: Path,
        host: str = "127.0.0.1",
        ready_timeout: float = 600.0,
        grace_period: float = 5.0,
        log_lines: int = 5000,
        log_file_bytes: int = 20 * 1024 * 1024,
        admission: Admission | None = None,
        restart_policy: str = "never",
        max_restarts: int = 3,
        restart_backoff: float = 1.0,
        restart_backoff_cap: float = 30.0,
    ) -> None:
        self.planning = planning
        self.log_dir = Path(log_dir)
        self.host = host
        self.ready_timeout = ready_timeout
        self.grace_period = grace_period
        self.log_lines = log_lines
        self.log_file_bytes = log_file_bytes
        self._servers: dict[str, ManagedServer] = {}
        self._engines: dict[str, EngineProcess] = {}
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._spawner = Spawner()
        self._closed = False
        self.admission = admission
        self.restart_policy, self.max_restarts = restart_policy, max_restarts
        self.restart_backoff, self.restart_backoff_cap = restart_backoff, restart_backoff_cap

    # -- queries ---------------------------------------------------------------------
    def get(self, name: str) -> ManagedServer:
        with self._lock:
            server = self._servers.get(name)
        if server is None:
            raise ServerNotFound(f"no server named {name!r}", "see the loaded servers with `%xgen ls`")
        return server

    def servers(self) -> list[ManagedServer]:
        with self._lock:
            return list(self._servers.values())

    def subscribe(self, cb: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(cb)
        return remover(self._lock, self._listeners, cb)

    # -- load --------------------------------------------------------------------------
    def load(self, request: LoadRequest) -> ManagedServer:
        """Plan (raising XGenError on bad input, nothing spawned) and start in the background.

        A second load under a name that is loading or ready returns that same server.
        """
        if self._closed:
            raise XGenError("the process manager is shutting down")
        name = name_for(request)
        with self._lock:
            old = self._servers.get(name)
            if old is not None and old.state in ACTIVE:
                if old.request.model != request.model or old.request.server_type != request.server_type:
                    raise ServerConflict(
                        f"a server named {name!r} already serves {old.request.model}",
                        "unload it first or pick another name",
                    )
                return old
            plan = self.planning.plan(request, name, frozenset())
            logs = LogBuffer(self.log_dir / f"{name}.log", self.log_lines, self.log_file_bytes)
            if old is not None:  # keep the history of earlier runs of this name
                logs = old.logs
            server = ManagedServer(name, request, plan, logs, secrets.token_hex(24))  # hex: a key starting with "-" reads as a flag
            server.host = self.host
            server.restart_policy = request.restart or self.restart_policy
            server.max_restarts = request.max_restarts if request.max_restarts is not None else self.max_restarts
            if self.admission is not None:  # refused: nothing started, nothing listed
                self.admission.admit(server)
            self._servers[name] = server
        self._emit_state(server)
        threading.Thread(target=self._run, args=(server,), name=f"xgen-run-{name}", daemon=True).start()
        return server

    def wait(self, name: str, timeout: float | None = None, until: Iterable[str] = ("ready", *FINAL)) -> ManagedServer:
        server = self.get(name)
        wanted = set(until)
        with server.changed:
            server.changed.wait_for(lambda: server.state in wanted, timeout)
        return server

    def _run(self, server: ManagedServer) -> None:
        excluded: set[str] = set()
        same_retries = 0
        cause: Cause | None = None
        while not server.stop_requested.is_set():
            outcome, attempt = self._attempt(server)
            if outcome == "ready":
                return
            if outcome == "stopped" or server.stop_requested.is_set():
                break
            cause = attempt.cause
            assert cause is not None
            server.logs.append(f"[xgen] attempt {attempt.number} ({attempt.backend}) failed: {cause.summary}")
            if cause.retry_same and same_retries < MAX_SAME_BACKEND_RETRIES:
                same_retries += 1
                continue
            if not (cause.engine_fault and server.plan.fallbacks):
                break
            excluded.add(server.plan.backend)
            try:
                server.plan = self.planning.plan(server.request, server.name, frozenset(excluded))
                if self.admission is not None:
                    self.admission.admit(server)
            except XGenError as exc:
                server.logs.append(f"[xgen] no fallback left: {exc}")
                break
            server.logs.append(f"[xgen] falling back to {server.plan.backend}")
            same_retries = 0
        if server.stop_requested.is_set():
            self._set_state(server, "stopped")
        else:
            server.error = {**(cause.to_dict() if cause else {}), "log_tail": server.logs.text_tail(30)}
            self._set_state(server, "failed")

    def _attempt(self, server: ManagedServer) -> tuple[str, Attempt]:
        plan = server.plan
        adapter = self.planning.adapter(plan.backend)
        port = free_port(self.host)
        argv = [*plan.argv, *adapter.bind_args(self.host, port)]
        shown = list(argv)  # the key travels in the environment, never in argv or the log
        attempt = Attempt(len(server.attempts) + 1, plan.backend, shown, port)
        attempt.first_log_seq = server.logs.tail(1)[0].seq + 1 if server.logs.tail(1) else 1
        server.attempts.append(attempt)
        server.port, server.pid = port, None
        server.progress, server.progress_message = 0.0, f"starting {plan.backend}"
        self._set_state(server, "starting")
        server.logs.append(f"[xgen] attempt {attempt.number}: {' '.join(shown)}", attempt.number)
        try:
            engine = EngineProcess(
                self._spawner, adapter, argv, {**plan.env, **adapter.key_env(server.api_key)}, server.logs, attempt.number,
                on_progress=lambda p: self._on_progress(server, p),
                on_exit=lambda rc: self._on_exit(server, attempt, rc),
            )  # fmt: skip
        except OSError as exc:
            server.logs.append(f"[xgen] could not start {argv[0]}: {exc}", attempt.number)
            attempt.cause = classify("No such file or directory", None)
            attempt.ended_at = time.time()
            return "failed", attempt
        attempt.pid = server.pid = engine.pid
        with self._lock:
            self._engines[server.name] = engine
        self._set_state(server, "loading")
        outcome = wait_until_ready(
            self.host, port, adapter.health_path, server.api_key if adapter.health_needs_key else None,
            exited=engine.exited, stop=server.stop_requested, poke=engine.poke, timeout=self.ready_timeout,
        )  # fmt: skip
        if outcome == "ready":
            server.ready_at = time.time()
            server.progress, server.progress_message = 1.0, "ready"
            self._set_state(server, "ready")
            return "ready", attempt
        if outcome == "timeout":
            server.logs.append(f"[xgen] not ready after {self.ready_timeout:.0f} s; stopping it", attempt.number)
        engine.stop(self.grace_period)
        attempt.returncode = engine.returncode
        attempt.ended_at = time.time()
        attempt.last_log_seq = server.logs.tail(1)[0].seq
        if outcome == "stopped":
            return "stopped", attempt
        tail = "\n".join(ln.text for ln in server.logs.tail(60, after=attempt.first_log_seq - 1))
        attempt.cause = classify(tail, engine.returncode) if outcome != "timeout" else Cause(
            "timeout", f"not ready within {self.ready_timeout:.0f} s", True
        )
        return "failed", attempt

    # -- callbacks from engine threads ------------------------------------------------
    def _on_progress(self, server: ManagedServer, p: Progress) -> None:
        if server.state not in ("starting", "loading"):
            return
        server.progress, server.progress_message = p.fraction, p.message
        self._emit(Event("progress", server.name, {"progress": p.fraction, "message": p.message}))

    def _on_exit(self, server: ManagedServer, attempt: Attempt, rc: int) -> None:
        attempt.returncode = rc
        attempt.ended_at = attempt.ended_at or time.time()
        if server.state == "ready" and not server.stop_requested.is_set() and server.attempts[-1] is attempt:
            tail = server.logs.text_tail(60)
            attempt.cause = classify(tail, rc)
            attempt.last_log_seq = server.logs.tail(1)[0].seq
            server.error = {**attempt.cause.to_dict(), "log_tail": server.logs.text_tail(30)}
            server.logs.append(f"[xgen] engine died after it was ready: {attempt.cause.summary}")
            server.stopped_at = time.time()
            server.stop_reason = f"crashed: {attempt.cause.summary}"
            delay = self._plan_restart(server)  # before the state: the crashed event shows the restart
            self._set_state(server, "crashed")
            if delay is not None:
                threading.Thread(target=self._restart_later, args=(server, delay),
                                 name=f"xgen-restart-{server.name}", daemon=True).start()

    # -- restart policy -----------------------------------------------------------------
    def _plan_restart(self, server: ManagedServer) -> float | None:
        """Seconds until the on-crash restart (1 s doubling, capped), or None when there is none."""
        if server.restart_policy != "on-crash" or self._closed:
            return None
        if server.restarts >= server.max_restarts:
            server.logs.append(f"[xgen] restart policy on-crash: gave up after {server.restarts} restart(s)")
            return None
        delay = min(self.restart_backoff_cap, self.restart_backoff * 2**server.restarts)
        server.restarts += 1
        server.next_restart_at = time.time() + delay
        server.logs.append(f"[xgen] restart policy on-crash: restart {server.restarts}/{server.max_restarts} "
                           f"in {delay:.1f} s")
        return delay

    def _restart_later(self, server: ManagedServer, delay: float) -> None:
        if server.cancel_restart.wait(delay):
            return
        with self._lock:  # unload() cancels under the same lock: no restart after an unload
            if server.cancel_restart.is_set() or self._closed or self._servers.get(server.name) is not server:
                return
            server.next_restart_at = None
            try:
                server.plan = self.planning.plan(server.request, server.name, frozenset())
                if self.admission is not None:
                    self.admission.admit(server)
            except XGenError as exc:
                server.logs.append(f"[xgen] restart refused: {exc}")
                server.stop_reason = f"restart refused: {exc}"
                self._emit_state(server)
                return
            server.error, server.stop_reason, server.stopped_at = None, None, None
            self._set_state(server, "planned")
        self._run(server)

    # -- unload -------------------------------------------------------------------------
    def unload(self, name: str, reason: str = "unloaded on request") -> ManagedServer:
        """Stop the engine (SIGTERM, then SIGKILL after the grace period) and wait for it."""
        server = self.get(name)
        with self._lock:
            server.cancel_restart.set()
            if server.next_restart_at is not None:
                server.next_restart_at = None
                server.logs.append(f"[xgen] pending restart cancelled: {reason}")
        if server.state in FINAL:
            return server
        was_ready = server.state == "ready"
        server.stop_reason = reason
        server.logs.append(f"[xgen] stopping: {reason}")
        server.stop_requested.set()
        self._set_state(server, "stopping")
        with self._lock:
            engine = self._engines.pop(name, None)
        if engine is not None:
            engine.stop(self.grace_period)
        if not was_ready:  # the loading thread notices the stop and ends the attempt
            self.wait(name, timeout=self.grace_period + 10, until=FINAL)
        if server.state not in FINAL:
            server.stopped_at = time.time()
            self._set_state(server, "stopped")
        return server

    def unload_all(self, reason: str = "unloaded on request") -> None:
        threads = [threading.Thread(target=self._safe_unload, args=(s.name, reason)) for s in self.servers()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _safe_unload(self, name: str, reason: str = "unloaded on request") -> None:
        try:
            self.unload(name, reason)
        except XGenError:
            pass

    def forget(self, name: str) -> None:
        """Drop a stopped, failed or crashed server from the list."""
        server = self.get(name)
        if server.state in ACTIVE or server.state == "stopping":
            raise ServerConflict(f"{name!r} is {server.state}", "unload it first")
        with self._lock:
            self._servers.pop(name, None)

    def shutdown(self) -> None:
        self._closed = True
        self.unload_all("the manager (Jupyter server) is shutting down")
        self._spawner.shutdown()

    # -- events ----------------------------------------------------------------------
    def _set_state(self, server: ManagedServer, state: State) -> None:
        with server.changed:
            if server.state == state:
                return
            server.state = state
            if state in FINAL:
                server.stopped_at = server.stopped_at or time.time()
                with self._lock:
                    if state != "crashed" or self._engines.get(server.name) is not None:
                        self._engines.pop(server.name, None)
            server.changed.notify_all()
        self._emit_state(server)

    def _emit_state(self, server: ManagedServer) -> None:
        self._emit(Event("state", server.name, server.to_dict()))

    def _emit(self, event: Event) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(event)
            except Exception:  # a broken subscriber must not break the engines
                pass
