"""The launch plan: which engine, with which flags, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .backend import EngineSettings

Level = Literal["info", "warning"]


@dataclass(frozen=True)
class Reason:
    """One rule that shaped the plan: an id, what it did, and one sentence of why."""

    rule: str
    effect: str
    why: str
    level: Level = "info"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        mark = "!" if self.level == "warning" else "-"
        return f"{mark} [{self.rule}] {self.effect}: {self.why}"


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes the planner expects the engine to take, per place."""

    weights_gpu: int
    weights_cpu: int
    kv_cache: int
    compute: int
    overhead: int
    #: Total on the GPU (0 on CPU-only plans) and in host RAM.
    gpu_total: int
    host_total: int
    #: Free bytes the plan was fitted to (None on CPU-only plans).
    budget: int | None = None
    #: A plan split across GPUs: bytes on each card, in the order of ``LaunchPlan.gpus``
    #: (empty for a single GPU, where ``gpu_total`` is that card's share).
    per_gpu: tuple[int, ...] = ()
    #: ... and the free bytes each card was fitted to.
    per_gpu_budget: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """The cost model's tokens/s for the chosen placement (and the runner-up it beat), so UIs
    can show them without parsing a reason's text."""

    decode_tps: float
    prompt_tps: float
    strategy: str  # all-gpu | experts | layers | cpu
    flags: str = ""
    runner_up: Prediction | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        up = d.get("runner_up")
        return cls(
            decode_tps=float(d["decode_tps"]), prompt_tps=float(d["prompt_tps"]), strategy=str(d["strategy"]),
            flags=str(d.get("flags") or ""), runner_up=cls.from_dict(up) if up else None,
        )  # fmt: skip


@dataclass(frozen=True)
class LaunchPlan:
    """A pure description of a launch; ``argv`` omits host, port and API key,
    which the process manager adds when it starts the engine."""

    name: str
    backend: str
    model_path: str
    server_type: str
    settings: EngineSettings
    argv: tuple[str, ...]
    env: dict[str, str]
    reasons: tuple[Reason, ...]
    memory: MemoryEstimate | None = None
    #: Backends to try next, in order, if this one fails for an engine reason.
    fallbacks: tuple[str, ...] = ()
    #: GPU indices the engine may use (empty on CPU plans).
    gpus: tuple[int, ...] = field(default=())
    #: Predicted tokens/s of this placement (None where the planner has no cost model for it).
    prediction: Prediction | None = None

    @property
    def warnings(self) -> list[Reason]:
        return [r for r in self.reasons if r.level == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "model_path": self.model_path,
            "server_type": self.server_type,
            "settings": self.settings.to_dict(),
            "argv": list(self.argv),
            "env": dict(self.env),
            "reasons": [r.to_dict() for r in self.reasons],
            "memory": self.memory.to_dict() if self.memory else None,
            "fallbacks": list(self.fallbacks),
            "gpus": list(self.gpus),
            "prediction": self.prediction.to_dict() if self.prediction else None,
        }
