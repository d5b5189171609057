"""The engine builds we know how to make, and the cmake flags for each."""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from xgen_jupyter.core.errors import RequestError

#: Flags every build shares: only the llama-server target, nothing that needs network at build time.
COMMON_CMAKE_ARGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    # Static libraries: one self-contained binary, so the wheel's lost .so symlinks cannot bite.
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    # The web UI is fetched from Hugging Face at build time unless both are off; no hub here.
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    # Engines are built on the box (or the same kind of CI box) that runs them.
    "-DGGML_NATIVE=ON",
)


@dataclass(frozen=True)
class BackendSpec:
    """One engine build: its name, extra cmake flags and the tools it needs besides cmake and a compiler."""

    name: str
    cmake_args: tuple[str, ...]
    tools: tuple[str, ...] = ()
    needs_vulkan_headers: bool = False
    needs_cuda: bool = False


BACKENDS: dict[str, BackendSpec] = {
    "llama-server-cpu": BackendSpec("llama-server-cpu", ()),
    "llama-server-vulkan": BackendSpec(
        "llama-server-vulkan", ("-DGGML_VULKAN=ON",), tools=("glslc",), needs_vulkan_headers=True
    ),
    "llama-server-cuda": BackendSpec("llama-server-cuda", ("-DGGML_CUDA=ON",), needs_cuda=True),
}


def get_backend(name: str) -> BackendSpec:
    """The spec for ``name``; a RequestError naming the known backends otherwise."""
    spec = BACKENDS.get(name)
    if spec is None:
        known = ", ".join(sorted(BACKENDS))
        raise RequestError(f"unknown engine backend {name!r}", hint=f"choose one of: {known}")
    return spec


def find_nvcc() -> Path | None:
    """nvcc from CUDACXX, PATH, or the usual CUDA toolkit places (often not on PATH)."""
    candidates = [os.environ.get("CUDACXX", ""), shutil.which("nvcc") or ""]
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home:
        candidates.append(str(Path(cuda_home) / "bin" / "nvcc"))
    candidates.append("/usr/local/cuda/bin/nvcc")
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def find_cublas_header(nvcc: Path) -> Path | None:
    """cublas_v2.h of the toolkit: ggml-cuda links cuBLAS, and a toolkit without it fails late in cmake."""
    roots = [nvcc.resolve().parent.parent, Path("/usr/local/cuda"), Path("/usr")]
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home:
        roots.insert(0, Path(cuda_home))
    roots += sorted(Path("/usr/local").glob("cuda-*"))
    for root in roots:
        for inc in (root / "include", *sorted(root.glob("targets/*/include")), root / "math_libs" / "include"):
            if (inc / "cublas_v2.h").is_file():
                return inc / "cublas_v2.h"
    return None


def cuda_cmake_args(nvcc: Path) -> list[str]:
    """sm_90 (H100/H200) by default; XGEN_CUDA_ARCHITECTURES overrides (e.g. "86;90")."""
    archs = os.environ.get("XGEN_CUDA_ARCHITECTURES", "90")
    return [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DCMAKE_CUDA_ARCHITECTURES={archs}"]


def extra_cmake_args() -> list[str]:
    """Site-specific flags from XGEN_ENGINE_CMAKE_ARGS (e.g. "-DGGML_NATIVE=OFF"), appended last so they win."""
    return shlex.split(os.environ.get("XGEN_ENGINE_CMAKE_ARGS", ""))
