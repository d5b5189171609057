"""``%xgen pull REPO[:QUANT or FILE]``: download a model with a progress bar in the cell.

Through the Jupyter server (POST xgen/api/pulls, then its job polled) when the kernel has one, so the
model lands in the server's models folder and its catalog; in this kernel otherwise. Interrupting the
cell stops the wait: the server's pull goes on (run the same line to follow it again: it joins), an
in-kernel pull stops and keeps its partial file for the next pull to continue.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ..core.errors import ModelError, XGenError
from ..core.models.pull_text import done_text, progress_line
from .progress import in_notebook_kernel

POLL = 0.25  # seconds between job reads: smooth enough for a bar, light on the server


class PullBar:
    """An ipywidgets bar in a notebook kernel, a ``\\r`` text line elsewhere."""

    def __init__(self, widgets: bool | None = None) -> None:
        self.widgets = in_notebook_kernel() if widgets is None else widgets
        self._last = ""
        if self.widgets:
            import ipywidgets as w
            from IPython.display import display

            self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, description="pull", bar_style="info")
            self.text = w.Label(value="")
            display(w.HBox([self.bar, self.text]))

    def update(self, progress: dict[str, Any] | None) -> None:
        if not progress:
            return
        line = progress_line(progress)
        if self.widgets:
            self.bar.value = float(progress.get("fraction") or 0.0)
            self.text.value = line
        elif line != self._last:
            sys.stdout.write("\r" + line.ljust(len(self._last)))
            sys.stdout.flush()
            self._last = line

    def close(self, ok: bool) -> None:
        if self.widgets:
            self.bar.bar_style = "success" if ok else "danger"
            self.bar.description = "pulled" if ok else "failed"
        elif self._last:
            sys.stdout.write("\n")
            sys.stdout.flush()


def _job_error(job: dict[str, Any]) -> XGenError:
    err = job.get("error") or {}
    return ModelError(str(err.get("message") or "the pull failed"), err.get("hint"))


def pull_remote(client: Any, spec: str, bar: PullBar) -> dict[str, Any]:
    """Start (or join) the server's pull of ``spec`` and follow it to the end."""
    job = client._call("POST", "xgen/api/pulls", json={"model": spec})
    try:
        while job["state"] == "running":
            bar.update(job.get("progress"))
            time.sleep(POLL)
            job = client._call("GET", f"xgen/api/pulls/{job['id']}")
    except KeyboardInterrupt:
        bar.close(False)
        raise XGenError(f"stopped following the pull of {spec}; the server goes on with it",
                        f"`%xgen pull {spec}` follows it again, `%xgen models` lists it when done") from None  # fmt: skip
    bar.update(job.get("progress"))
    bar.close(job["state"] == "done")
    if job["state"] != "done":
        raise _job_error(job)
    return dict(job["result"])


def pull_local(client: Any, spec: str, bar: PullBar) -> dict[str, Any]:
    from ..core.models.pull import pull

    cfg = client.core.config
    try:
        result = pull(spec, model_dirs=list(cfg.model_dirs), shared_dir=cfg.shared_dir,
                      on_progress=lambda p: bar.update(p.to_dict()), min_interval=POLL)  # fmt: skip
    except BaseException:
        bar.close(False)
        raise
    bar.close(True)
    return result


def run_pull(client: Any, spec: str, widgets: bool | None = None) -> dict[str, Any]:
    bar = PullBar(widgets)
    result = pull_remote(client, spec, bar) if client.mode == "remote" else pull_local(client, spec, bar)
    print(done_text(result), flush=True)
    return result
