"""What the planner needs to know about a model, read from its own files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ModelFormat = Literal["gguf", "hf"]


@dataclass(frozen=True)
class ModelFacts:
    """Facts from a GGUF header or a Hugging Face folder. Sizes are in bytes."""

    path: str
    format: ModelFormat
    name: str
    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    #: KV heads; when the model has a per-layer array this is its maximum and
    #: ``n_head_kv_layers`` holds the array (0 marks a layer without KV cache).
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    file_size: int
    #: Sliding-window size in tokens, and which layers use it (llama.cpp keeps only
    #: ``sliding_window`` tokens of KV for those layers).
    sliding_window: int | None = None
    swa_layers: tuple[bool, ...] = ()
    #: ``Q4_K_M``, ``F16`` ... (GGUF) or the torch dtype (HF).
    quantization: str = ""
    #: Bytes of weights in each repeating block ``blk.N``.
    layer_bytes: tuple[int, ...] = ()
    #: Bytes of tensors outside the blocks (token embedding, output head, norms).
    non_layer_bytes: int = 0
    #: Bytes of the output head alone (``output.weight``, or the tied embedding).
    output_bytes: int = 0
    #: True when there is no separate output head and the token embedding is reused
    #: (llama.cpp then keeps a second copy on the output device).
    output_tied: bool = False
    n_head_kv_layers: tuple[int, ...] = ()
    #: Feed-forward width (the largest, where layers differ); 0 when unknown.
    n_ff: int = 0
    vocab_size: int = 0
    has_chat_template: bool = False
    chat_template: str | None = field(default=None, repr=False)
    #: True for models whose metadata says they are embedding models (pooling set).
    is_embedding_model: bool = False
    pooling_type: str | None = None
    #: Mixture of experts: experts per layer and how many each token uses (0 for dense models).
    expert_count: int = 0
    expert_used_count: int = 0
    #: Bytes of each block's routed-expert tensors (``ffn_{gate,up,down}_exps``), the part
    #: ``--n-cpu-moe`` moves to the CPU; () for dense models.
    layer_expert_bytes: tuple[int, ...] = ()
    #: The largest single expert tensor (the engine copies one at a time to the GPU for a prompt).
    expert_tensor_max: int = 0
    #: HF only: the engine-side dtype and parameter count.
    dtype: str | None = None
    n_params: int | None = None

    @property
    def weight_bytes(self) -> int:
        return sum(self.layer_bytes) + self.non_layer_bytes

    def kv_heads(self, il: int) -> int:
        """KV heads of layer ``il`` (per-layer array when the model has one)."""
        if self.n_head_kv_layers:
            return self.n_head_kv_layers[il]
        return self.n_head_kv

    @property
    def is_moe(self) -> bool:
        return self.expert_count > 1 and self.expert_used_count > 0 and any(self.layer_expert_bytes)

    @property
    def n_swa_layers(self) -> int:
        return sum(1 for s in self.swa_layers if s)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("chat_template", None)
        d["weight_bytes"] = self.weight_bytes
        d["layer_bytes"] = list(self.layer_bytes)
        d["swa_layers"] = list(self.swa_layers)
        d["n_head_kv_layers"] = list(self.n_head_kv_layers)
        d["layer_expert_bytes"] = list(self.layer_expert_bytes)
        return d
