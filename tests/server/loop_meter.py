"""Measure what each asyncio callback costs the loop's thread, apart from CPU contention.

Every callback (``asyncio.Handle._run``) run on the measured loop's thread is timed three ways:
wall time, the thread's CPU time (``time.thread_time``: unaffected by being preempted), and the
time it sat runnable but not running (``/proc/thread-self/schedstat``'s run delay: other
processes had the CPU). ``blocked`` = wall - cpu - run delay is the time the callback slept:
waiting for a lock, a sleep, blocking I/O, or the GIL; less the run delay the process's other
threads had meanwhile (a thread preempted while it holds the GIL keeps the loop waiting: that
is the machine's contention). CPU work on the loop and waiting for a lock on the loop are both
xgen's own doing; being preempted, directly or through the GIL's holder, is not.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


def _run_delay(path: str = "/proc/thread-self/schedstat") -> int:
    """Nanoseconds the thread has spent runnable but not running (waiting for a CPU)."""
    try:
        with open(path) as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):  # no schedstat (another kernel, a thread gone): nothing
        return 0


def _others_delay(me: int) -> dict[str, int]:
    """The same for each of this process's other threads: while one of them is preempted holding
    the GIL, the loop's thread waits for it, and that wait is CPU contention, not xgen's doing."""
    try:
        tids = [t for t in os.listdir("/proc/self/task") if int(t) != me]
    except OSError:
        return {}
    return {t: _run_delay(f"/proc/self/task/{t}/schedstat") for t in tids}


def _grown(before: dict[str, int], after: dict[str, int]) -> int:
    """Run delay the other threads gathered in between (a thread that ended meanwhile: unknown, 0)."""
    return sum(max(0, d - before.get(t, 0)) for t, d in after.items())


@dataclass
class Worst:
    cpu: float = 0.0
    blocked: float = 0.0
    cpu_what: str = ""
    blocked_what: str = ""
    callbacks: int = 0
    samples: list[tuple[float, float, float, str]] = field(default_factory=list)

    def summary(self) -> str:
        top = sorted(self.samples, key=lambda s: -s[1])[:5]
        rows = "; ".join(f"{w * 1e3:.1f} ms wall / {c * 1e3:.1f} ms cpu / {b * 1e3:.1f} ms blocked: {what}"
                         for w, c, b, what in top)
        return (f"{self.callbacks} callbacks; max cpu {self.cpu * 1e3:.1f} ms ({self.cpu_what}); "
                f"max blocked {self.blocked * 1e3:.1f} ms ({self.blocked_what}); slowest: {rows}")


def describe(handle: Any) -> str:
    """The callback, or for a task's step the coroutine chain (with the handler and path of a
    Tornado request): what took the time. Taken before the step runs: a finished coroutine has no frame."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    get_coro = getattr(task, "get_coro", None)
    if get_coro is None:
        return repr(handle)[:160]
    coro, chain = get_coro(), []
    while coro is not None and len(chain) < 6:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if code is not None:
            chain.append(f"{code.co_qualname}:{frame.f_lineno if frame else '-'}")
        owner = frame.f_locals.get("self") if frame is not None and len(chain) == 1 else None
        request = getattr(owner, "request", None)
        if request is not None and hasattr(request, "path"):
            chain[-1] += f" [{type(owner).__name__} {request.method} {request.path}]"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return "task " + " > ".join(chain)


@contextmanager
def measure(loop: asyncio.AbstractEventLoop) -> Iterator[Worst]:
    """Time every callback run on ``loop``'s thread while the block runs."""
    worst = Worst()
    thread = threading.get_ident()  # the test body runs on the loop's thread
    tid = threading.get_native_id()
    original = asyncio.events.Handle._run

    def timed(handle: Any) -> None:
        if threading.get_ident() != thread:
            return original(handle)  # type: ignore[no-any-return]
        what = describe(handle)
        o0, d0, c0, w0 = _others_delay(tid), _run_delay(), time.thread_time(), time.perf_counter()
        try:
            return original(handle)  # type: ignore[no-any-return]
        finally:
            wall, cpu, d1 = time.perf_counter() - w0, time.thread_time() - c0, _run_delay()
            preempted = (d1 - d0 + _grown(o0, _others_delay(tid))) / 1e9
            blocked = max(0.0, wall - cpu - preempted)
            worst.callbacks += 1
            if wall > 0.005:
                worst.samples.append((wall, cpu, blocked, what))
            if cpu > worst.cpu:
                worst.cpu, worst.cpu_what = cpu, what
            if blocked > worst.blocked:
                worst.blocked, worst.blocked_what = blocked, what

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]
    try:
        yield worst
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
