"""ProcessManager: the supervisor of the engines this process runs: start, watch, stop.

It plans nothing and admits nothing: the core hands it a planned, admitted server and its
adapter (``start``); a failed engine's fallback and a crashed engine's restart ask the core for a
new (plan, adapter) through the one ``replan`` callback, called holding none of its locks.
State changes are compare-and-set against the table in core/process/states.py.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from ..adapters.base import BackendAdapter, Progress
from ..config import CoreConfig
from ..errors import XGenError
from ..planning.request import LoadRequest
from .causes import Cause, classify
from .engine import EngineProcess
from .events import Event, Listener
from .ports import free_port
from .readiness import wait_until_ready
from .restart import Backoff
from .roster import SHUTTING_DOWN, Roster, unload_each
from .server import ACTIVE, FINAL, Attempt, ManagedServer
from .spawn import Spawner
from .states import State, transition
from .supervisor import Replan

__all__ = ["Event", "Listener", "ProcessManager", "name_for"]

MAX_SAME_BACKEND_RETRIES = 2
#: The CoreConfig fields the supervisor reads (its keyword arguments carry the same names).
SUPERVISOR_SETTINGS = ("host", "ready_timeout", "grace_period", "restart_backoff", "restart_backoff_cap")


def name_for(request: LoadRequest) -> str:
    if request.name:
        return request.name
    stem = Path(request.model.rstrip("/")).name
    stem = re.sub(r"\.gguf$", "", stem, flags=re.I)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._") or "model"
    suffix = {"embedding": "-embed", "rerank": "-rerank"}.get(request.server_type, "")
    return stem[:64] + (suffix if suffix and not stem.endswith(suffix[1:]) else "")


class ProcessManager:
    @classmethod
    def from_config(cls, replan: Replan, config: CoreConfig) -> ProcessManager:
        """The supervisor for ``config`` (the settings it reads are CoreConfig's, by field name)."""
        return cls(replan, **{k: getattr(config, k) for k in SUPERVISOR_SETTINGS})

    def __init__(
        self,
        replan: Replan,
        *,
        host: str = "127.0.0.1",
        ready_timeout: float = 600.0,
        grace_period: float = 5.0,
        restart_backoff: float = 1.0,
        restart_backoff_cap: float = 30.0,
    ) -> None:
        self.replan = replan
        self.host, self.ready_timeout, self.grace_period = host, ready_timeout, grace_period
        self.backoff = Backoff(restart_backoff, restart_backoff_cap)
        self.roster = roster = Roster()
        # The read side of the supervisor protocol is the roster's (ClusterManager shares it the same way).
        self.get, self.find, self.servers, self.wait, self.forget = (roster.get, roster.find, roster.servers,
                                                                     roster.wait, roster.forget)
        self.subscribe = roster.subscribe
        self._engines: dict[str, EngineProcess] = {}
        self._runners: dict[str, threading.Thread] = {}
        # Guards _engines, _runners and the hand-over between a pending restart and an unload.
        # Never held while planning, admitting, spawning or waiting.
        self._lock = threading.Lock()
        self._spawner = Spawner()
        self._closed = False

    # -- start -------------------------------------------------------------------------
    def start(self, server: ManagedServer, adapter: BackendAdapter | None) -> ManagedServer:
        """List a planned, admitted server and start its engine in the background."""
        if self._closed:
            raise XGenError("the process manager is shutting down")
        if adapter is None:
            raise XGenError(f"no adapter given to start {server.name!r}")
        server.host = self.host
        self.roster.add(server)
        threading.Thread(target=self._run, args=(server, adapter), name=f"xgen-run-{server.name}",
                         daemon=True).start()
        return server

    def _to(self, server: ManagedServer, expected: str | frozenset[str] | tuple[str, ...], to: State) -> bool:
        if not self.roster.transition(server, expected, to):
            return False
        if to in FINAL:
            with self._lock:
                self._engines.pop(server.name, None)
        return True

    def _run(self, server: ManagedServer, adapter: BackendAdapter) -> None:
        with self._lock:
            self._runners[server.name] = threading.current_thread()
        excluded: set[str] = set()
        same_retries = 0
        cause: Cause | None = None
        while not server.stop_requested.is_set():
            outcome, attempt = self._attempt(server, adapter)
            if outcome == "ready":
                return
            if outcome == "stopped" or attempt is None or server.stop_requested.is_set():
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
                server.plan, adapter = self.replan(server, frozenset(excluded))
            except XGenError as exc:
                server.logs.append(f"[xgen] no fallback left: {exc}")
                break
            server.logs.append(f"[xgen] falling back to {server.plan.backend}")
            same_retries = 0
        self._end(server, cause)

    def _end(self, server: ManagedServer, cause: Cause | None) -> None:
        """The run is over: stopped when a stop was asked for, else failed (with the cause)."""
        while (now := server.state) not in FINAL:
            if server.stop_requested.is_set() or now == "stopping":
                if self._to(server, now, "stopped"):
                    return
            else:
                server.error = {**(cause.to_dict() if cause else {}), "log_tail": server.logs.text_tail(30)}
                if self._to(server, now, "failed"):
                    return

    def _attempt(self, server: ManagedServer, adapter: BackendAdapter) -> tuple[str, Attempt | None]:
        plan = server.plan
        port = free_port(self.host)
        argv = [*plan.argv, *adapter.bind_args(self.host, port)]
        shown = list(argv)  # the key travels in the environment, never in argv or the log
        attempt = Attempt(len(server.attempts) + 1, plan.backend, shown, port)
        attempt.first_log_seq = server.logs.tail(1)[0].seq + 1 if server.logs.tail(1) else 1
        server.attempts.append(attempt)
        server.port, server.pid = port, None
        server.progress, server.progress_message = 0.0, f"starting {plan.backend}"
        if not self._to(server, ("planned", "starting", "loading"), "starting"):
            server.attempts.remove(attempt)  # stopped before it began
            return "stopped", None
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
        self._to(server, "starting", "loading")  # False: an unload began; the wait below sees its stop
        outcome = wait_until_ready(
            self.host, port, adapter.health_path, server.api_key if adapter.health_needs_key else None,
            exited=engine.exited, stop=server.stop_requested, poke=engine.poke, timeout=self.ready_timeout,
        )  # fmt: skip
        if outcome == "ready":
            server.ready_at = time.time()
            server.progress, server.progress_message = 1.0, "ready"
            if self._to(server, "loading", "ready"):
                return "ready", attempt
            outcome = "stopped"  # an unload won the race
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
        self.roster.emit(Event("progress", server.name, {"progress": p.fraction, "message": p.message}))

    def _on_exit(self, server: ManagedServer, attempt: Attempt, rc: int) -> None:
        attempt.returncode = rc
        attempt.ended_at = attempt.ended_at or time.time()
        if server.state != "ready" or server.stop_requested.is_set() or server.attempts[-1] is not attempt:
            return
        tail = server.logs.text_tail(60)
        attempt.cause = classify(tail, rc)
        attempt.last_log_seq = server.logs.tail(1)[0].seq
        server.error = {**attempt.cause.to_dict(), "log_tail": server.logs.text_tail(30)}
        server.stop_reason = f"crashed: {attempt.cause.summary}"
        delay = None if self._closed else self.backoff.schedule(server)  # first: the crashed event shows it
        if not self._to(server, "ready", "crashed"):  # an unload won the race: no crash, no restart
            if delay is not None:
                server.restarts, server.next_restart_at = server.restarts - 1, None
            return
        server.logs.append(f"[xgen] engine died after it was ready: {attempt.cause.summary}")
        if delay is not None:
            threading.Thread(target=self._restart_later, args=(server, delay),
                             name=f"xgen-restart-{server.name}", daemon=True).start()

    def _restart_later(self, server: ManagedServer, delay: float) -> None:
        if server.cancel_restart.wait(delay) or self._closed or self.find(server.name) is not server:
            return
        try:
            plan, adapter = self.replan(server, frozenset())  # plans and admits: no lock held
        except XGenError as exc:
            server.next_restart_at = None
            server.logs.append(f"[xgen] restart refused: {exc}")
            server.stop_reason = f"restart refused: {exc}"
            self.roster.emit_state(server)
            return
        with self._lock:  # unload() cancels under the same lock: no restart after an unload
            go = not server.cancel_restart.is_set() and not self._closed
            if go:
                server.plan, server.next_restart_at = plan, None
                server.error, server.stop_reason, server.stopped_at = None, None, None
                go = transition(server, "crashed", "planned")
        self.roster.emit_state(server)  # planned; or still crashed, which releases what replan admitted
        if go:
            self._run(server, adapter)

    # -- stop --------------------------------------------------------------------------
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
        server.stop_requested.set()  # before the state: a run that ends now ends as stopped
        server.stop_reason = reason
        if not self.roster.transition(server, ACTIVE, "stopping"):
            self.wait(name, timeout=self.grace_period + 10, until=FINAL)  # it ended, or another unload runs
            return server
        server.logs.append(f"[xgen] stopping: {reason}")
        with self._lock:
            engine = self._engines.pop(name, None)
            runner = self._runners.get(name)
        if engine is not None:
            engine.stop(self.grace_period)
        if runner is not None and runner is not threading.current_thread():
            runner.join(self.grace_period + 10)  # a loading run notices the stop and ends its attempt
        self._to(server, "stopping", "stopped")  # False: the run did it
        return server

    def unload_all(self, reason: str = "unloaded on request") -> None:
        unload_each(self.unload, self.servers(), reason)

    def shutdown(self) -> None:
        self._closed = True  # no new start, no restart from here on
        self.unload_all(SHUTTING_DOWN)
        self._spawner.shutdown()
