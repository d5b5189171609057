"""Why an engine failed, read from its exit status and the tail of its log."""

from __future__ import annotations

import re
import signal
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Cause:
    id: str
    summary: str
    #: True when the engine (build, driver, GPU) failed rather than the model: try the next backend.
    engine_fault: bool
    #: True when trying the same backend again (new port) may succeed.
    retry_same: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# Order matters: the most specific pattern wins.
PATTERNS: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("gpu-page-fault", r"page fault|memory access violation|HSA_STATUS_ERROR_MEMORY_APERTURE|VM_L2_PROTECTION_FAULT",
     "the GPU page-faulted while loading", True, False),
    ("unsupported-gfx", r"no kernel image is available|invalid device function|hipErrorNoBinaryForGpu|Cannot find .*gfx|unsupported gfx|HSA_STATUS_ERROR_INVALID_ISA",
     "the engine was not built for this GPU's architecture", True, False),
    ("out-of-memory", r"out of memory|ErrorOutOfDeviceMemory|failed to allocate|cudaMalloc failed|OOM|Cannot allocate memory|unable to allocate",
     "the engine ran out of memory", True, False),
    ("port-in-use", r"address already in use|couldn't bind|bind failed|Errno 98",
     "the port was taken before the engine bound it", False, True),
    ("no-row-split", r"does not support split buffers",
     "this engine build cannot split rows across GPUs (use split_mode layer, or tensor where the build has it)", False, False),
    ("bad-model", r"failed to load model|invalid magic|not a gguf|GGUF.*(?:corrupt|invalid)|unknown model architecture|error loading model|tensor .* data is not within",
     "the engine could not read the model file", False, False),
    ("missing-binary", r"No such file or directory|command not found|cannot open shared object file|Exec format error|No module named",
     "the engine's program or one of its libraries is missing", True, False),
    ("bad-argument", r"error: invalid argument|unknown argument|unrecognized arguments|error: unrecognized",
     "the engine rejected a command-line flag (a different engine version?)", True, False),
)  # fmt: skip
_COMPILED = [(i, re.compile(p, re.I), s, e, r) for i, p, s, e, r in PATTERNS]


def classify(log_tail: str, returncode: int | None) -> Cause:
    """Classify a failed start or crash; unknown causes count as engine faults."""
    for cid, rx, summary, engine, retry in _COMPILED:
        if rx.search(log_tail):
            return Cause(cid, summary, engine, retry)
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return Cause("killed", f"the engine was killed by {name}", True)
    if returncode in (139, 134):
        return Cause("crash", f"the engine crashed (exit {returncode})", True)
    return Cause("exited", f"the engine exited with status {returncode}", True)
