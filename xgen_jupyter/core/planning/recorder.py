"""Records what each engine really took on its GPU once it is ready (calibration.py's store).

Subscribed to the supervisor's events by XGenCore; reads the engine process's memory from NVML.
Where NVML cannot see the process (no NVIDIA driver, another pid namespace) nothing is recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import calibration
from .plan import LaunchPlan

log = logging.getLogger(__name__)
#: Seconds after "ready" before reading NVML: buffers are allocated by then; a short wait lets
#: the first request's workspace (no flash attention) show too, when one comes quickly.
DELAY_S = 2.0
Measure = Callable[[set[int], tuple[int, ...]], "dict[int, int] | None"]


class CalibrationRecorder:
    def __init__(
        self,
        state_dir: Path | str,
        find: Callable[[str], Any],
        measure: Measure = calibration.measured_gpu_bytes,
        delay: float = DELAY_S,
    ) -> None:
        self.state_dir, self.find, self.measure, self.delay = Path(state_dir), find, measure, delay

    def on_event(self, event: Any) -> None:
        if getattr(event, "kind", None) != "state" or event.data.get("state") != "ready":
            return
        server = self.find(event.server)
        plan: LaunchPlan | None = getattr(server, "plan", None)
        pid = getattr(server, "pid", None) or event.data.get("pid")
        if plan is None or not pid or plan.memory is None or not plan.gpus or plan.memory.gpu_total <= 0:
            return
        t = threading.Timer(self.delay, self.record, args=(plan, int(pid)))
        t.daemon = True
        t.start()

    def record(self, plan: LaunchPlan, pid: int) -> dict[str, Any] | None:
        """Read the engine's GPU memory and store it against the plan's prediction."""
        mem = plan.memory
        assert mem is not None
        got = self.measure({pid}, plan.gpus)
        if not got:
            return None
        try:
            return calibration.record(
                self.state_dir, calibration.key_for_plan(plan),
                predicted=int(mem.gpu_total), measured=int(sum(got.values())),
                placement={"n_gpu_layers": plan.settings.n_gpu_layers, "n_cpu_moe": plan.settings.n_cpu_moe,
                           "per_gpu": {str(k): v for k, v in got.items()}},
            )  # fmt: skip
        except OSError as e:
            log.warning("xgen: could not record the calibration of %s: %s", plan.name, e)
            return None
