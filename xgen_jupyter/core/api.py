"""The shapes that cross the API (docs/API.md), defined once.

The Jupyter server's handlers, the in-kernel client (notebook/local_client.py), the Ray side
(core/cluster: a node's agent answers with these, the mirror reads them back) and the CLI all
build and read the same JSON through this module instead of each rebuilding it:

- server states: :data:`STATES`, :data:`ACTIVE`, :data:`FINAL` (their transitions: process/states.py);
- a launch plan: ``LaunchPlan.to_dict()`` out, :func:`plan_from_dict` back in;
- the events websocket: :func:`hello_message`, :func:`gpus_message`, and :data:`STREAMED_EVENTS`
  (the manager events it forwards as they are, ``Event.to_dict()``);
- errors: ``XGenError.to_dict()`` out, :func:`~xgen_jupyter.core.errors.error_class` back in;
- byte sizes: :mod:`xgen_jupyter.core.units`.

It imports only plain data modules of the core, so a remote client stays light.
"""

from __future__ import annotations

import time
from typing import Any

from .errors import error_class
from .planning.plan import EngineSettings, LaunchPlan, MemoryEstimate, Prediction, Reason
from .process.states import ACTIVE, FINAL, STATES

__all__ = ["ACTIVE", "FINAL", "STATES", "STREAMED_EVENTS", "error_class", "gpus_message", "hello_message",
           "plan_from_dict"]  # fmt: skip

Message = dict[str, Any]

#: Manager events the events websocket passes on (the others are the manager's own business).
STREAMED_EVENTS = frozenset({"state", "progress", "queue"})


def plan_from_dict(d: Message) -> LaunchPlan:
    """A LaunchPlan from ``LaunchPlan.to_dict()`` (the REST API's shape, and what a Ray node sends)."""
    settings = dict(d["settings"])
    if settings.get("tensor_split") is not None:
        settings["tensor_split"] = tuple(settings["tensor_split"])
    return LaunchPlan(
        name=d["name"], backend=d["backend"], model_path=d["model_path"], server_type=d["server_type"],
        settings=EngineSettings(**settings), argv=tuple(d["argv"]), env=dict(d.get("env") or {}),
        reasons=tuple(Reason(**r) for r in d.get("reasons", [])),
        memory=_memory(d["memory"]) if d.get("memory") else None,
        fallbacks=tuple(d.get("fallbacks") or ()), gpus=tuple(d.get("gpus") or ()),
        prediction=Prediction.from_dict(d["prediction"]) if d.get("prediction") else None,
    )  # fmt: skip


def _memory(d: Message) -> MemoryEstimate:
    m = dict(d)
    for key in ("per_gpu", "per_gpu_budget"):  # tuples in the dataclass, lists in JSON
        if key in m:
            m[key] = tuple(m[key])
    return MemoryEstimate(**m)


def hello_message(servers: list[Message], hardware: Message) -> Message:
    """The events websocket's first message: every server now and the hardware report."""
    return {"kind": "hello", "servers": servers, "hardware": hardware}


def gpus_message(gpus: list[Message], at: float | None = None) -> Message:
    """A GPU sample on the events websocket (each GPU as ``GPUInfo.to_dict()``)."""
    return {"kind": "gpus", "data": {"gpus": gpus, "time": time.time() if at is None else at}}
