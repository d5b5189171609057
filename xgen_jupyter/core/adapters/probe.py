"""Probes that tell which engine builds this box has: a binary's device and flags, Python dists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from importlib import metadata


def executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(path or "") and os.access(path or "", os.X_OK)


def llama_device(binary: str) -> str:
    """Which GPU backend a plain ``llama-server`` was built with (cpu when none)."""
    try:
        out = subprocess.run(
            [binary, "--list-devices"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    text = out.stdout + out.stderr
    for dev, marks in (
        ("cuda", ("CUDA0", "ggml_cuda")),
        ("rocm", ("ROCm0", "ggml_hip")),
        ("vulkan", ("Vulkan0", "ggml_vulkan")),
    ):
        if any(m in text for m in marks):
            return dev
    return "cpu"


def help_flags(binary: str) -> frozenset[str]:
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


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def dist_installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def dist_in(python: str, name: str) -> bool:
    """Whether the interpreter ``python`` (another venv) has the distribution ``name``."""
    try:
        out = subprocess.run(
            [python, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0
