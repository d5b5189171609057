"""Everything a plan is a function of, gathered in one immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..hardware.types import GPUInfo, HardwareReport
from ..models.facts import ModelFacts
from ..units import GiB as GiB  # re-exported: planner tests size their boxes with it
from .backend import BackendInstall, EngineTraits
from .request import LoadRequest


@dataclass(frozen=True)
class Occupant:
    """A server already running on this box, as far as planning cares."""

    name: str
    backend: str
    server_type: str
    gpus: tuple[int, ...]


@dataclass(frozen=True)
class PlanInputs:
    hardware: HardwareReport
    facts: ModelFacts
    request: LoadRequest
    #: Every registered backend by id: its row (engine, device, traits, order, adapter) and install.
    backends: Mapping[str, BackendInstall]
    name: str
    exclude: frozenset[str] = frozenset()
    occupied: tuple[Occupant, ...] = ()
    default_n_ctx: int = 4096
    #: GPU memory kept free beside a plan: gpu_margin_mib + gpu_margin x the planned bytes
    #: (margin.py: sized by the estimate's measured error, not the card's size).
    gpu_margin: float = 0.01
    gpu_margin_mib: float = 64
    #: Host memory bandwidth in bytes/s (measured once, cached; None: a default) for the cost model.
    host_bandwidth: float | None = None
    #: What earlier loads really took (calibration.py records, by key).
    calibration: Mapping[str, Any] = field(default_factory=dict)
    rocm_targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleCtx:
    """What the rules look at once the backend and GPUs are chosen."""

    inputs: PlanInputs
    install: BackendInstall
    gpus: tuple[GPUInfo, ...]

    @property
    def backend(self) -> str:
        return self.install.row.id

    @property
    def engine(self) -> str:
        return self.install.row.engine

    @property
    def device(self) -> str:  # vulkan | rocm | cuda | cpu
        return self.install.row.device

    @property
    def traits(self) -> EngineTraits:
        return self.install.row.traits

    @property
    def gpu(self) -> GPUInfo | None:
        return self.gpus[0] if self.gpus else None

    @property
    def facts(self) -> ModelFacts:
        return self.inputs.facts

    @property
    def embedding(self) -> bool:
        """An embedding server, or a reranker (llama.cpp runs both as a pooling model)."""
        return self.inputs.request.server_type in ("embedding", "rerank")

    @property
    def rerank(self) -> bool:
        return self.inputs.request.server_type == "rerank"

    def gpu_hosts_llm(self) -> bool:
        ids = {g.index for g in self.gpus}
        return any(o.server_type == "llm" and ids & set(o.gpus) for o in self.inputs.occupied)
