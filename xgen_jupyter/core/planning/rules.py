"""The seed's lessons as data: each rule has an id, a condition, what it sets, and why.

Conditions read the engine's traits and the device kind, never a backend or engine name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import chat_templates
from ..units import GiB
from .context import RuleCtx

# Neutral chat-format names; each adapter maps them to its engine's own names.
CHAT_FORMAT_BY_ARCH = {
    "gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma",
    "llama": "llama3", "qwen2": "chatml", "qwen3": "chatml", "qwen2moe": "chatml",
    "phi3": "phi3", "mistral": "mistral", "mistral3": "mistral",
}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    id: str
    why: str
    when: Callable[[RuleCtx], bool]
    sets: Callable[[RuleCtx], dict[str, Any]]
    effect: str


def _ggml(c: RuleCtx) -> bool:
    return c.traits.ggml


def _mlock_fits(c: RuleCtx) -> bool:
    margin = 2 * GiB
    return c.inputs.hardware.cpu.memory_available >= c.facts.file_size + margin


def _chat_format(c: RuleCtx) -> str:
    return c.inputs.request.chat_format or CHAT_FORMAT_BY_ARCH.get(c.facts.architecture, "chatml")


def _jinja_copy(c: RuleCtx) -> bool:
    """A template-less chat GGUF on a Jinja engine, in a format xgen has a Jinja copy of."""
    fresh = not c.embedding and not c.facts.has_chat_template
    return c.traits.jinja and fresh and _chat_format(c) in chat_templates.FORMATS


def _dgpu_parallel(c: RuleCtx) -> dict[str, Any]:
    free = (c.gpu.memory_free or c.gpu.memory_total) if c.gpu else 0
    # Dedicated VRAM holds several KV caches; fewer slots on small cards.
    return {"n_parallel": 4 if free >= 16 * GiB else 2}


RULES: tuple[Rule, ...] = (
    Rule(
        "rocm-fit-off",
        "llama-server's --fit misreads VRAM on ROCm and page-faults at load; xgen sizes -ngl itself",
        lambda c: c.traits.auto_fit and c.device == "rocm",
        lambda c: {"fit_off": True},
        "--fit off",
    ),
    Rule(
        "own-fit",
        "xgen sized -ngl and the context from the model's metadata; --fit would silently resize them",
        lambda c: c.traits.auto_fit and c.device in ("cuda", "vulkan"),
        lambda c: {"fit_off": True},
        "--fit off",
    ),
    Rule(
        "rocm-no-flash-attn",
        "Flash Attention on ROCm returned corrupted output at some sequence lengths",
        lambda c: _ggml(c) and c.device == "rocm",
        lambda c: {"flash_attn": "off"},
        "--flash-attn off",
    ),
    Rule(
        "vulkan-no-flash-attn",
        "Vulkan builds lack stable Flash Attention; on lavapipe it segfaults on the first request",
        lambda c: _ggml(c) and c.device == "vulkan",
        lambda c: {"flash_attn": "off"},
        "--flash-attn off",
    ),
    Rule(
        "embed-cpu-on-rocm",
        "an embedding server beside an LLM on one ROCm GPU page-faults; the CPU serves embeddings fine",
        lambda c: c.embedding and c.device == "rocm" and c.gpu_hosts_llm(),
        lambda c: {"n_gpu_layers": 0},
        "-ngl 0",
    ),
    Rule(
        "igpu-parallel-1",
        "an integrated GPU shares system RAM; concurrent slots exhaust it and the box runs out of memory",
        lambda c: _ggml(c) and c.gpu is not None and c.gpu.integrated,
        lambda c: {"n_parallel": 1},
        "--parallel 1",
    ),
    Rule(
        "dgpu-parallel",
        "dedicated VRAM holds several KV caches, so concurrent requests are served in parallel",
        lambda c: c.traits.parallel_slots and c.gpu is not None and not c.gpu.integrated and not c.embedding,
        _dgpu_parallel,
        "--parallel 4 (2 under 16 GiB free)",
    ),
    Rule(
        "cpu-parallel-1",
        "on the CPU every slot shares the same cores and costs its own KV cache",
        lambda c: c.device == "cpu" and _ggml(c),
        lambda c: {"n_parallel": 1},
        "--parallel 1",
    ),
    Rule(
        "mlock-if-ram",
        "free RAM holds the whole model; locking it stops swapping (which cut decode from 30 to 5 t/s)",
        lambda c: _ggml(c) and _mlock_fits(c),
        lambda c: {"mlock": True},
        "--mlock",
    ),
    Rule(
        "embed-batch",
        "documents longer than a 512-token batch were truncated; embeddings need the whole input in one batch",
        lambda c: c.embedding and _ggml(c),
        lambda c: {"n_batch": 2048, "n_ubatch": 2048, "embedding": True},
        "--batch-size 2048 --ubatch-size 2048 --embedding",
    ),
    Rule(
        "rerank",
        "a reranker answers /v1/rerank with one relevance score per document (rank pooling)",
        lambda c: c.rerank and c.traits.reranking,
        lambda c: {"rerank": True},
        "--reranking",
    ),
    Rule(
        "embed-vllm",
        "vLLM serves /v1/embeddings only with its pooling runner",
        lambda c: c.embedding and c.traits.pooling_runner,
        lambda c: {"embedding": True},
        "--runner pooling",
    ),
    Rule(
        "chat-template-missing",
        "the GGUF carries no chat template; without one the engine falls back to a wrong format and answers ''",
        lambda c: _ggml(c) and not c.embedding and not c.facts.has_chat_template,
        lambda c: {"chat_format": CHAT_FORMAT_BY_ARCH.get(c.facts.architecture, "chatml")},
        "chat format set from the architecture",
    ),
    Rule(
        "jinja-chat-format",
        "clients such as Jupyter AI send tools, which llama-server takes only with --jinja; the GGUF has "
        "no template, so xgen gives the chat format as a Jinja file that writes the same prompt",
        _jinja_copy,
        lambda c: {"jinja": True},
        "--jinja --chat-template-file (xgen's Jinja copy of the chat format)",
    ),
    Rule(
        "jinja-template",
        "the model's own Jinja chat template enables tool calling",
        lambda c: c.traits.jinja and not c.embedding and c.facts.has_chat_template,
        lambda c: {"jinja": True},
        "--jinja",
    ),
)
