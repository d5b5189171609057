"""Run cmake with its output in a log file and its progress reported as it goes."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import deque
from pathlib import Path

from xgen_jupyter.core.errors import XGenError

from .progress import BuildProgress, ProgressFn


def run_logged(cmd: list[str], log: Path, what: str, progress: ProgressFn | None = None,
               track_progress: bool = False, cwd: Path | None = None) -> None:
    """Run ``cmd``, appending its output to ``log``; XGenError with the log's tail if it fails.

    The child gets its own process group so an interrupt (Ctrl-C, a cancelled install) stops the
    whole compiler tree it started, and nothing else.
    """
    parser = BuildProgress() if track_progress else None
    tail: deque[str] = deque(maxlen=40)
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip())
                if parser is not None and progress is not None:
                    update = parser.feed(line)
                    if update is not None:
                        progress(*update)
            rc = proc.wait()
        except BaseException:
            _stop(proc)
            raise
    if rc != 0:
        raise XGenError(f"{what} failed (exit {rc}): {_first_error(tail)}", hint=f"full log: {log}")


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _first_error(lines: deque[str]) -> str:
    """The most telling line of a failed build: the first compiler/cmake error, else the last line."""
    for line in lines:
        low = line.lower()
        if "error:" in low or "cmake error" in low or "fatal error" in low:
            return line.strip()[:300]
    return (lines[-1].strip() if lines else "no output")[:300]
