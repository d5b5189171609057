"""One running engine process: spawned, its output pumped into the log, its exit noticed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable

from ..adapters.base import BackendAdapter, Progress
from .logbuffer import LogBuffer
from .spawn import Spawner, signal_group


class EngineProcess:
    def __init__(
        self,
        spawner: Spawner,
        adapter: BackendAdapter,
        argv: list[str],
        env: dict[str, str],
        logs: LogBuffer,
        attempt: int,
        on_progress: Callable[[Progress], None],
        on_exit: Callable[[int], None],
    ) -> None:
        self.adapter = adapter
        self.logs = logs
        self.attempt = attempt
        self.exited = threading.Event()
        self.poke = threading.Event()
        self.returncode: int | None = None
        self._on_progress = on_progress
        self._on_exit = on_exit
        self.proc: subprocess.Popen[bytes] = spawner.spawn(argv, {**os.environ, **env})
        self._pump = threading.Thread(target=self._read, name=f"xgen-pump-{self.proc.pid}", daemon=True)
        self._pump.start()
        # Waiting apart from reading: children that inherit stdout must not delay the
        # notice of the engine's own death.
        threading.Thread(target=self._wait, name=f"xgen-wait-{self.proc.pid}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode("utf-8", "replace")
            self.logs.append(text, self.attempt)
            prog = self.adapter.progress(text)
            if prog is not None:
                self._on_progress(prog)
            self.poke.set()

    def _wait(self) -> None:
        rc = self.proc.wait()
        # Let the last lines (the ones that explain the exit) reach the log first.
        self._pump.join(0.5)
        self.returncode = rc
        self.exited.set()
        self.poke.set()
        self._on_exit(rc)

    def stop(self, grace: float) -> int | None:
        """SIGTERM the engine's group, then SIGKILL after ``grace`` seconds."""
        if not self.exited.is_set():
            signal_group(self.proc, signal.SIGTERM)
            if not self.exited.wait(grace):
                signal_group(self.proc, signal.SIGKILL)
                self.exited.wait(5)
        # Children that ignored SIGTERM but stayed in the group.
        signal_group(self.proc, signal.SIGKILL)
        return self.returncode
