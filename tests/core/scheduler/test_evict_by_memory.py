"""Eviction by memory with the real default engine: an injected box where only one model fits in
host RAM (what the box registry admits against). The idle server is unloaded for the new one, with
the reason in its status; a server with a stream in flight never is."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.model_files import GEMMA
from xgen_jupyter.core.errors import CapacityRefused
from xgen_jupyter.core.hardware.cpu import CPUDetector
from xgen_jupyter.core.hardware.inject import report_from_dict
from xgen_jupyter.core.scheduler.catalog import Catalog
from xgen_jupyter.core.scheduler.router import Scheduler

pytestmark = pytest.mark.engine
MiB = 1024**2


@pytest.fixture
def one_fits(core_factory: Any, tmp_path: Path) -> Any:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(GEMMA, models / "second.gguf")  # a second model of the same size
    probe = core_factory(model_dirs=[str(models)])
    need = probe.plan(probe.request({"model": "second"})).memory.host_total
    cpu = CPUDetector().detect_cpu()
    total = int(need * 1.5) + 512 * MiB  # one plan + the registry's 512 MiB margin fits, two do not
    report = report_from_dict({"gpus": [], "cpu": {**cpu.to_dict(), "memory_total": total,
                                                   "memory_available": total}})
    report = replace(report, cpu=replace(report.cpu, memory_total=total, memory_available=total))
    return core_factory(model_dirs=[str(models)], shared_dir=tmp_path / "shared", hardware=lambda _r: report)


def scheduler(core: Any) -> Scheduler:
    return Scheduler(core, Catalog(core.models, lambda: ({}, [])))


async def test_idle_server_is_evicted_for_a_new_load_never_one_streaming(one_fits: Any) -> None:
    core, sched = one_fits, scheduler(one_fits)
    first = await sched.server_for("default", "alice")
    assert first.state == "ready"
    body = {"model": "default", "messages": [{"role": "user", "content": "Count to 20."}], "max_tokens": 24,
            "stream": True}
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        async with (
            sched.slot(first, "alice"),  # as the proxy holds it for a request's length
            http.stream("POST", f"{first.endpoint}/v1/chat/completions", json=body,
                        headers={"Authorization": f"Bearer {first.api_key}"}) as r,
        ):
                lines = r.aiter_lines()
                assert (await anext(lines)).startswith("data:")  # the stream is in flight
                with pytest.raises(CapacityRefused):  # only the busy server could make room: refused
                    await sched.server_for("second", "bob")
                assert first.state == "ready" and first.stop_reason is None
                rest = [ln async for ln in lines if ln.startswith("data:")]
        assert rest[-1] == "data: [DONE]" and len(rest) > 5  # the stream ran to its end, untouched
    second = await sched.server_for("second", "bob")  # now first is idle: unloaded to make room
    assert second.state == "ready"
    assert first.state == "stopped"
    assert first.stop_reason.startswith("unloaded for bob/second after 0 min idle"), first.stop_reason
    assert "unloaded for bob/second" in first.logs.text_tail(40)
    held = {e["name"]: e["state"] for e in core.box_servers()}
    assert set(held) == {"second"}, json.dumps(held)  # the evicted server's reservation is gone
    sched.close()


async def test_a_pinned_server_is_never_evicted(one_fits: Any) -> None:
    core, sched = one_fits, scheduler(one_fits)
    core.load({"model": "default", "pinned": True})
    first = await sched.server_for("default", "alice")
    with pytest.raises(CapacityRefused):
        await sched.server_for("second", "alice")
    assert first.state == "ready"
    sched.close()
