"""What the planner knows of a backend: its registry row, its engine's traits, its install record.

A leaf module: the planner imports it, and the adapters (``core/adapters``) implement and fill
it, so that ``planning`` never imports ``adapters`` (the tiers import downward only).

``EngineSettings`` lives here too, next to the ``Launcher`` contract that turns it into a
command line: it is the planner's output and every adapter's input, so it belongs to the
adapters' contract, and that contract must sit below both tiers (in ``core/adapters/base.py``
the planner could not build it without importing adapters).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class EngineSettings:
    """The engine-neutral settings an adapter turns into a command line."""

    n_ctx: int
    n_batch: int
    n_ubatch: int
    n_threads: int
    n_parallel: int
    n_gpu_layers: int
    flash_attn: str = "auto"
    fit_off: bool = False
    mlock: bool = False
    cont_batching: bool = True
    jinja: bool = False
    embedding: bool = False
    #: A reranker: /v1/rerank instead of chat (llama-server's --reranking).
    rerank: bool = False
    chat_format: str | None = None
    main_gpu: int | None = None
    split_mode: str | None = None
    tensor_split: tuple[float, ...] | None = None
    cache_type_k: str | None = None
    cache_type_v: str | None = None
    #: Mixture of experts: keep the routed experts of the first N blocks on the CPU
    #: (``--n-cpu-moe N``), or the same as an ``--override-tensor`` value on builds without it.
    n_cpu_moe: int | None = None
    override_tensor: str | None = None
    # vLLM
    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    #: vLLM's KV cache in bytes (``--kv-cache-memory-bytes``), sized by the planner (vllm_fit.py).
    kv_cache_memory_bytes: int | None = None
    max_model_len: int | None = None
    dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EngineTraits:
    """Facts about an engine the planner acts on, declared by its adapter class (``traits``).

    The defaults describe an engine xgen knows nothing special about."""

    #: Runs on ggml (llama.cpp): ggml's device lessons apply (flash attention off on ROCm and
    #: Vulkan, one slot on a CPU or an integrated GPU, --mlock, the embedding batch, chat formats).
    ggml: bool = False
    #: xgen sizes -ngl and the context from the model's metadata to fit free memory. When False
    #: the engine sizes itself from a share of each GPU (``gpu_memory_share``), as vLLM does.
    memory_fit: bool = True
    #: The share of each GPU an engine that sizes itself claims (vLLM's --gpu-memory-utilization).
    gpu_memory_share: float | None = None
    #: The engine's slots share one -c: each gets n_ctx / n_parallel cells and a logit row.
    slots_share_ctx: bool = False
    #: Serves concurrent requests in parallel slots (worth more slots on a dedicated GPU).
    parallel_slots: bool = False
    #: Offloads the output head first with partial -ngl (llama-server b11434; older llama.cpp last).
    head_first: bool = False
    #: Devices on which ``--flash-attn auto`` turns flash attention on.
    flash_attn_auto_on: frozenset[str] = frozenset()
    #: Can split one model over several GPUs (--split-mode, --tensor-split).
    gpu_split: bool = False
    #: Resizes -ngl and the context itself unless told ``--fit off`` (xgen sizes them instead).
    auto_fit: bool = False
    #: Can render the model's own Jinja chat template (tool calling).
    jinja: bool = False
    #: Serves /v1/embeddings only with its pooling runner switched on.
    pooling_runner: bool = False
    #: Serves /v1/rerank for a model loaded as a reranker (server_type "rerank").
    reranking: bool = False


class Launcher(Protocol):
    """The one boundary the planner calls: settings in, the engine's argv and env out."""

    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]: ...

    def env(self, settings: EngineSettings, gpus: tuple[int, ...]) -> dict[str, str]: ...


@dataclass(frozen=True)
class BackendRow:
    """One backend, as its registry row declares it (``core/adapters/registry.py``)."""

    #: The backend id, e.g. ``llama-server-vulkan``; never parsed, only looked up.
    id: str
    #: The engine program (``llama-server``, ``vllm`` ...), for people reading plans and lists.
    engine: str
    #: The device kind the build targets: ``vulkan``, ``rocm``, ``cuda`` or ``cpu``.
    device: str
    #: Model formats it serves: ``gguf`` and/or ``hf``.
    formats: tuple[str, ...]
    traits: EngineTraits
    #: What to do when it is missing, said in the "not installed" reason.
    install_hint: str
    #: Its place in the fallback order on each kind of box (``box_kind``): lower goes first;
    #: a box kind not listed never chooses it on its own.
    order: tuple[tuple[str, float], ...]
    #: Builds the adapter (its class) for an install of this backend.
    adapter: Callable[[BackendInstall], Launcher] = field(compare=False, repr=False)

    def rank(self, box_kind: str) -> float | None:
        return dict(self.order).get(box_kind)


@dataclass(frozen=True)
class BackendInstall:
    """Whether a backend is installed here, where, and its row: what the planner gets per id."""

    row: BackendRow
    available: bool
    executable: str | None = None
    source: str = ""
    reason: str = ""
    #: Long flags the engine's ``--help`` lists (llama-server changes flags between builds).
    flags: frozenset[str] = frozenset()

    @property
    def backend(self) -> str:
        return self.row.id

    def launcher(self) -> Launcher:
        """The adapter that builds this install's command line."""
        return self.row.adapter(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.row.id, "available": self.available, "executable": self.executable,
            "source": self.source, "reason": self.reason, "flags": sorted(self.flags),
        }  # fmt: skip


def fallback_order(backends: Mapping[str, BackendInstall], fmt: str, box_kind: str) -> tuple[str, ...]:
    """Every backend serving ``fmt`` on this kind of box, in the order they are tried."""
    ranked = [
        (r, b.row.id)
        for b in backends.values()
        if fmt in b.row.formats and (r := b.row.rank(box_kind)) is not None
    ]
    return tuple(b for _, b in sorted(ranked, key=lambda x: x[0]))
