"""The core's load path: plan and admit outside every supervisor lock, one claim per name."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from xgen_jupyter.core.errors import ServerConflict
from xgen_jupyter.core.process.server import ACTIVE

pytestmark = pytest.mark.engine
CPU_ONLY = {"allowed_backends": ["llama-cpp-python"]}


def test_a_load_that_plans_holds_up_no_lookup_and_no_other_name(core_factory: Any) -> None:
    core = core_factory(**CPU_ONLY)
    entered, gate = threading.Event(), threading.Event()
    real_plan = core.plan

    def slow_plan(request: Any, name: str | None = None, exclude: frozenset[str] = frozenset()) -> Any:
        if name == "slow":  # this load is planning (as a big GGUF's inspection would) until the gate opens
            entered.set()
            assert gate.wait(30)
        return real_plan(request, name, exclude)

    core.plan = slow_plan
    got: dict[str, Any] = {}
    first = threading.Thread(target=lambda: got.setdefault("first", core.load({"model": "default", "name": "slow"})))
    second = threading.Thread(target=lambda: got.setdefault("second", core.load({"model": "default", "name": "slow"})))
    first.start()
    assert entered.wait(30)
    second.start()  # the same name: waits for the first's claim, not for a lock anyone else needs
    t0 = time.perf_counter()
    for _ in range(100):
        core.manager.servers()
        assert core.manager.find("slow") is None  # not listed before it is planned and admitted
    assert time.perf_counter() - t0 < 0.5
    other = core.load({"model": "default", "name": "other", "n_threads": 1})  # another name goes ahead
    assert other.state in ACTIVE and "slow" not in {s.name for s in core.manager.servers()}
    with pytest.raises(ServerConflict):  # and the name check does not need the planner either
        core.load({"model": "default", "name": "other", "server_type": "embedding"})
    core.unload("other")
    gate.set()
    first.join(30)
    second.join(30)
    assert got["first"] is got["second"], "two loads of one name give one server"
    core.manager.wait("slow", timeout=120)
    assert got["first"].state == "ready" and len(got["first"].attempts) == 1
