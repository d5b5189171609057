"""The cluster manager's mirror (core/cluster/manager.py) when a node stops a server on its own.

The Ray transport is replaced by a scripted node (``ScriptedNodes``: what an agent's ``poll``
answers, state by state), so the mirror's steps are seen one at a time and every run takes the
same path; the same code against real Ray nodes is in tests/boxd/test_box_ray_svc.py. A node that
was caught "stopping" by one poll must be followed until it reports "stopped": before, the mirror
stopped watching a "stopping" server and it stayed "stopping" for good (quota and books held).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from xgen_jupyter.core.cluster import manager as manager_module
from xgen_jupyter.core.cluster.manager import ClusterManager
from xgen_jupyter.core.cluster.remote import RemoteServer
from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.planning.plan import EngineSettings, LaunchPlan, Reason
from xgen_jupyter.core.planning.request import LoadRequest
from xgen_jupyter.core.process.logbuffer import LogBuffer

NODE = {"node_id": "n1", "address": "10.0.0.2", "hostname": "b"}


class ScriptedNodes:
    """One live node whose agent answers ``poll`` with the state the test sets, and ``unload``."""

    def __init__(self, *_: Any) -> None:
        self.state = "ready"
        self.polled = threading.Event()
        self.unloads: list[str] = []

    def alive(self) -> dict[str, dict[str, Any]]:
        return {"n1": NODE}

    def call(self, node_id: str, method: str, *args: Any, timeout: float = 60.0) -> Any:
        if method == "unload":
            self.unloads.append(args[0])
        self.polled.set()
        return {"server": {"state": self.state, "stop_reason": "stopped on the node"}, "lines": []}


@pytest.fixture
def cm(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(manager_module, "Nodes", ScriptedNodes)
    m = ClusterManager(str, lambda c: None, CoreConfig(cluster="head:6379", grace_period=1.0), poll_interval=0.05)
    yield m
    m._stop.set()


def _mirror(cm: ClusterManager) -> RemoteServer:
    plan = LaunchPlan("b1", "llama-cpp-python", "/m.gguf", "llm", EngineSettings(2048, 512, 512, 1, 1, 0), ("x",), {}, ())
    remote = {"name": "b1", "api_key": "k", "plan": plan.to_dict()}
    s = RemoteServer(LoadRequest(model="/m.gguf"), remote, LogBuffer(None), NODE, Reason("cluster-placement", "B", "fits"),
                     1, 0)
    s.state = "ready"
    cm.roster.add(s)
    return s


def _until(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(cond())


def test_a_stop_the_node_began_is_followed_to_stopped(cm: ClusterManager) -> None:
    s = _mirror(cm)
    nodes: ScriptedNodes = cm.nodes  # type: ignore[assignment]
    seen: list[str] = []
    cm.subscribe(lambda e: seen.append(e.data["state"]) if e.kind == "state" else None)
    nodes.state = "stopping"  # e.g. the node's own janitor, or its core shutting down
    assert _until(lambda: s.state == "stopping"), s.state
    nodes.state = "stopped"
    assert _until(lambda: s.state == "stopped"), s.state
    assert seen == ["stopping", "stopped"] and s.stop_reason == "stopped on the node"


def test_an_unload_that_finds_it_stopping_there_waits_for_the_end(cm: ClusterManager) -> None:
    s = _mirror(cm)
    nodes: ScriptedNodes = cm.nodes  # type: ignore[assignment]
    nodes.state = "stopping"
    assert _until(lambda: s.state == "stopping")
    threading.Timer(0.3, setattr, (nodes, "state", "stopped")).start()
    assert cm.unload("b1", "idle").state == "stopped" and nodes.unloads == []  # the node's stop, not a second


def test_the_node_never_gets_the_idle_ttl(cm: ClusterManager) -> None:
    """The node sees none of the traffic (proxies touch the mirror): only this side unloads for idleness."""
    best: Any = type("Best", (), {"node_id": "n1", "gpu": None})()
    assert "idle_ttl" not in cm._node_request(LoadRequest(model="/m.gguf", idle_ttl=3.0), best)
