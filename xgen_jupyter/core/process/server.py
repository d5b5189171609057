"""A managed server: what the user loaded, by name, with its plan, state, attempts and log."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..planning.plan import LaunchPlan
from ..planning.request import LoadRequest
from .causes import Cause
from .logbuffer import LogBuffer
from .states import ACTIVE, FINAL, State

__all__ = ["ACTIVE", "FINAL", "Attempt", "ManagedServer", "State"]


@dataclass
class Attempt:
    """One try at starting an engine; every attempt is kept with its log range."""

    number: int
    backend: str
    argv: list[str]
    port: int
    started_at: float = field(default_factory=time.time)
    pid: int | None = None
    ended_at: float | None = None
    returncode: int | None = None
    cause: Cause | None = None
    first_log_seq: int = 0
    last_log_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "backend": self.backend,
            "argv": self.argv,
            "port": self.port,
            "pid": self.pid,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "returncode": self.returncode,
            "cause": self.cause.to_dict() if self.cause else None,
            "log_seq": [self.first_log_seq, self.last_log_seq],
        }


class ManagedServer:
    def __init__(self, name: str, request: LoadRequest, plan: LaunchPlan, logs: LogBuffer, api_key: str) -> None:
        self.name = name
        self.request = request
        self.plan = plan
        self.logs = logs
        self.api_key = api_key
        self.state: State = "planned"
        self.revision = 0  # +1 per state change: viewers drop a snapshot older than the one they show
        self.attempts: list[Attempt] = []
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.pid: int | None = None
        self.created_at = time.time()
        self.ready_at: float | None = None
        self.stopped_at: float | None = None
        self.error: dict[str, Any] | None = None
        self.progress: float | None = None
        self.progress_message = ""
        self.stop_requested = threading.Event()
        self.changed = threading.Condition()
        # Shared-box lifecycle: who owns it, when the proxy last used it, idle unload and restarts.
        self.owner: str | None = None
        self.last_used: float | None = None
        self.idle_ttl: float | None = request.idle_ttl
        self.pinned = bool(request.pinned)
        self.restart_policy = request.restart or "never"
        self.max_restarts = request.max_restarts if request.max_restarts is not None else 3
        self.restarts = 0
        self.next_restart_at: float | None = None
        self.cancel_restart = threading.Event()
        self.stop_reason: str | None = None
        self.shared_with: list[str] = []

    def touch(self) -> None:
        """A request went through the proxy: the idle clock starts again."""
        self.last_used = time.time()

    @property
    def endpoint(self) -> str | None:
        return f"http://{self.host}:{self.port}" if self.port and self.state == "ready" else None

    @property
    def backend(self) -> str:
        return self.plan.backend

    def to_dict(self, secrets: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "model": self.request.model,
            "model_path": self.plan.model_path,
            "server_type": self.request.server_type,
            "state": self.state,
            "revision": self.revision,
            "backend": self.plan.backend,
            "plan": self.plan.to_dict(),
            "reasons": [r.to_dict() for r in self.plan.reasons],
            "attempts": [a.to_dict() for a in self.attempts],
            "pid": self.pid,
            "port": self.port,
            "endpoint": self.endpoint,
            "created_at": self.created_at,
            "ready_at": self.ready_at,
            "stopped_at": self.stopped_at,
            "error": self.error,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "log_file": str(self.logs.path) if self.logs.path else None,
            "owner": self.owner,
            "last_used": self.last_used,
            "idle_ttl": self.idle_ttl,
            "pinned": self.pinned,
            "stop_reason": self.stop_reason,
            "restart": {
                "policy": self.restart_policy,
                "max_restarts": self.max_restarts,
                "restarts": self.restarts,
                "next_restart_at": self.next_restart_at,
            },
            "shared_with": list(self.shared_with),
        }
        if secrets:
            d["api_key"] = self.api_key
        return d
