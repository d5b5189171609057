"""Pulls running in the background for a long-lived process (the Jupyter extension): each is a job
with an id, its latest progress, then its result or error; subscribers get every change.

A second request for a spec already being pulled joins that job instead of starting another.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import XGenError
from .pull import PullProgress, pull
from .pull_spec import parse_spec

Listener = Callable[[dict[str, Any]], None]
_KEEP_FINISHED = 50  # finished jobs kept for GET (oldest dropped first)


class PullJobs:
    def __init__(self, model_dirs: list[str], shared_dir: Any = None, **pull_kw: Any) -> None:
        self.model_dirs, self.shared_dir, self.pull_kw = list(model_dirs), shared_dir, pull_kw
        self._jobs: dict[str, dict[str, Any]] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def subscribe(self, fn: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._listeners:
                    self._listeners.remove(fn)

        return unsubscribe

    def start(self, spec: str, token: str | None = None) -> dict[str, Any]:
        """Validate ``spec`` (a bad one raises at once), then pull it in a thread; the job's dict."""
        ps = parse_spec(spec)
        key = f"{ps.repo}@{ps.revision or ''}:{(ps.selector or '').upper()}"
        with self._lock:
            for job in self._jobs.values():
                if job["key"] == key and job["state"] == "running":
                    return dict(job)
            job = {"id": str(next(self._ids)), "key": key, "spec": spec, "state": "running", "progress": None,
                   "result": None, "error": None, "started": time.time(), "finished": None}  # fmt: skip
            self._jobs[job["id"]] = job
            self._trim()
        threading.Thread(target=self._run, args=(job, token), name=f"xgen-pull-{job['id']}", daemon=True).start()
        return dict(job)

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return dict(job) if job else None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(j) for j in self._jobs.values()]

    def _run(self, job: dict[str, Any], token: str | None) -> None:
        def on_progress(p: PullProgress) -> None:
            self._update(job, progress=p.to_dict())

        try:
            result = pull(job["spec"], model_dirs=self.model_dirs, shared_dir=self.shared_dir, token=token,
                          on_progress=on_progress, **self.pull_kw)  # fmt: skip
            self._update(job, state="done", result=result, finished=time.time())
        except XGenError as exc:
            self._update(job, state="failed", error=exc.to_dict(), finished=time.time())
        except Exception as exc:  # a bug must still end the job, visibly, not leave it "running"
            err = {"error": type(exc).__name__, "message": str(exc), "hint": None}
            self._update(job, state="failed", error=err, finished=time.time())

    def _update(self, job: dict[str, Any], **changes: Any) -> None:
        with self._lock:
            job.update(changes)
            snapshot = dict(job)
            listeners = list(self._listeners)
        message = {"kind": "pull", "job": snapshot}
        for fn in listeners:
            try:
                fn(message)
            except Exception:  # a closed socket must not stop the pull
                pass

    def _trim(self) -> None:
        done = [j for j in self._jobs.values() if j["state"] != "running"]
        for j in done[: max(len(done) - _KEEP_FINISHED, 0)]:
            del self._jobs[j["id"]]
