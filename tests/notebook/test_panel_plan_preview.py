"""The panel's load form preview, driven in this process against the real Jupyter server: changing
the form's fields asks ``client.plan()`` (nothing starts) and shows the predicted memory against
what is free now, and the predicted tokens/s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.core.hardware.hwfixtures import FIXTURES, NVMLReplay
from tests.notebook.waits import wait_for
from xgen_jupyter.core.hardware.nvml import NVMLDetector
from xgen_jupyter.core.units import gib
from xgen_jupyter.notebook.panel import XGenPanel
from xgen_jupyter.notebook.panel_preview import PlanPreview


@pytest.fixture()
def panel(remote: Any) -> Iterator[XGenPanel]:
    p = XGenPanel(remote, interval=0.5)
    try:
        yield p
    finally:
        p.close()


def _planned_ctx(p: XGenPanel, n_ctx: int) -> Any:
    plan = p.form.preview.plan
    return plan if plan and plan["settings"]["n_ctx"] == n_ctx else None


def test_preview_follows_the_form_before_load(
    panel: XGenPanel, remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_for(lambda: panel.gpus.cpu.value, 30, "the hello's hardware")
    wait_for(lambda: panel.form.preview.plan, 60, "the plan of the form as it opened")
    asked: list[dict[str, Any]] = []
    real_plan = panel.client.plan

    def plan_counted(request: dict[str, Any]) -> Any:  # the real client's plan, counted
        asked.append(dict(request))
        return real_plan(request)

    monkeypatch.setattr(panel.client, "plan", plan_counted)
    panel.form.name.value = "preview"
    for n in (1024, 2048, 3072):  # typed in quick succession: only the last one is planned
        panel.form.n_ctx.value = n
    plan = wait_for(lambda: _planned_ctx(panel, 3072), 60, "the plan of n_ctx=3072")
    assert [r.get("n_ctx") for r in asked] == [3072], asked
    html = panel.form.preview.widget.value
    # The same plan the API gives for the form's request, with its memory against what is free now.
    again = remote.plan(panel.form.request())
    assert plan["memory"] == again["memory"] and plan["memory"]["host_total"] > 0
    cpu = remote.hardware()["cpu"]
    assert f"Host RAM: {gib(plan['memory']['host_total'])} planned of " in html
    assert f"free ({gib(cpu['memory_total'])})" in html
    pred = plan["prediction"]
    assert pred and pred["strategy"] == "cpu" and f"predicted ~{pred['decode_tps']:.0f} t/s decode" in html
    assert not any(s["name"] == "preview" for s in remote.servers())  # nothing was started

    # A smaller context: a new plan, less host memory (the KV cache), shown without clicking load.
    panel.form.n_ctx.value = 1024
    small = wait_for(lambda: _planned_ctx(panel, 1024), 60, "the plan of n_ctx=1024")
    assert small["memory"]["host_total"] < plan["memory"]["host_total"]
    assert f"Host RAM: {gib(small['memory']['host_total'])} planned" in panel.form.preview.widget.value


def test_preview_shows_the_plan_error_inline(panel: XGenPanel) -> None:
    wait_for(lambda: panel.form.preview.plan, 60, "the first plan")
    panel.form.model.options = ["default", "/no/such/file.gguf"]
    panel.form.model.value = "/no/such/file.gguf"
    wait_for(lambda: panel.form.preview.error, 60, "the plan's error")
    assert "file.gguf" in panel.form.preview.widget.value and panel.form.preview.plan is None
    panel.form.model.value = "default"
    wait_for(lambda: panel.form.preview.plan, 60, "a plan again")
    assert "planned" in panel.form.preview.widget.value


def test_preview_bars_on_a_recorded_h100(remote: Any) -> None:
    """No GPU here: the real plan's memory moved onto card 0, drawn against a recorded H100's
    free memory as the events' GPU samples give it; the bars follow a new sample."""
    (h100,) = [
        g.to_dict() for g in NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")).detect().gpus
    ]
    plan = remote.plan({"model": "default", "n_ctx": 2048})
    plan["gpus"] = [0]
    plan["memory"] = {**plan["memory"], "gpu_total": 2 * 1024**3, "host_total": 0}
    preview = PlanPreview()
    preview.set_plan(plan)
    preview.set_gpus([h100])
    html = preview.widget.value
    assert (
        f"GPU 0 {h100['name']}: 2.0 GiB planned of {gib(h100['memory_free'])} free ({gib(h100['memory_total'])})"
        in html
    )
    assert "Host RAM" not in html and "more than is free" not in html
    preview.set_gpus([{**h100, "memory_free": 1024**3}])  # someone else took the card meanwhile
    assert (
        "2.0 GiB planned of 1.0 GiB free" in preview.widget.value
        and "more than is free now" in preview.widget.value
    )


def test_preview_says_what_the_last_load_took(remote: Any) -> None:
    """A plan carrying the calibration reason (an earlier load of the same key was measured)."""
    plan = remote.plan({"model": "default", "n_ctx": 2048})
    assert not any(r["rule"] == "calibration" for r in plan["reasons"])  # nothing measured on a CPU box
    why = (
        "the last load of this model with these settings took 0.6 GiB where 0.5 GiB was predicted (+102 MiB)"
    )
    reason = {
        "rule": "calibration",
        "effect": "predicted 0.5 GiB, last measured 0.6 GiB",
        "why": why,
        "level": "info",
    }
    preview = PlanPreview()
    preview.set_plan(plan)
    assert "last measured" not in preview.widget.value
    preview.set_plan({**plan, "reasons": [*plan["reasons"], reason]})
    assert (
        "predicted 0.5 GiB, last measured 0.6 GiB" in preview.widget.value
        and "+102 MiB" in preview.widget.value
    )
