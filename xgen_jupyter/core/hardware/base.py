"""What a detector is, and the wrapper that makes sure one never raises."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import time
from collections.abc import Callable
from types import ModuleType
from typing import Protocol, runtime_checkable

from .types import DetectorResult, GPUInfo


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and a ``detect()`` that returns a result and never raises."""

    name: str

    def detect(self) -> DetectorResult: ...


def unavailable(name: str, why: str, started: float | None = None) -> DetectorResult:
    elapsed = time.monotonic() - started if started is not None else 0.0
    return DetectorResult(name=name, available=False, reason=f"unavailable: {why}", elapsed_s=elapsed)


def guarded(name: str, body: Callable[[], tuple[GPUInfo, ...] | DetectorResult]) -> DetectorResult:
    """Run ``body``; turn any exception into ``unavailable: <why>`` and time it.

    A detector probes drivers and tools that fail in endless ways (missing .so, a driver
    mismatch, a tool that prints garbage); none of that may stop detection of the rest.
    """
    t0 = time.monotonic()
    try:
        out = body()
    except ToolUnavailable as e:
        return unavailable(name, str(e), t0)
    except Exception as e:
        return unavailable(name, f"{type(e).__name__}: {e}", t0)
    elapsed = time.monotonic() - t0
    if isinstance(out, DetectorResult):
        return DetectorResult(out.name, out.available, out.gpus, out.reason, elapsed)
    return DetectorResult(name=name, available=True, gpus=out, reason="" if out else "no GPUs found",
                          elapsed_s=elapsed)


def optional_import(module: str) -> ModuleType | None:
    """Import ``module`` if it is installed, else None (without paying for a failing import)."""
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


class ToolUnavailable(RuntimeError):
    """A command-line tool is missing or failed; the message is the ``unavailable:`` reason."""


def run_tool(args: list[str], timeout: float = 20.0) -> str:
    """Run a read-only probe tool from PATH and return stdout; never hangs past ``timeout``."""
    exe = shutil.which(args[0])
    if exe is None:
        raise ToolUnavailable(f"{args[0]} not found on PATH")
    try:
        proc = subprocess.run(
            [exe, *args[1:]], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as e:
        raise ToolUnavailable(f"{' '.join(args)} timed out after {timeout:g}s") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        raise ToolUnavailable(f"{' '.join(args)} exited {proc.returncode}: {tail[0][:200]}")
    return proc.stdout
