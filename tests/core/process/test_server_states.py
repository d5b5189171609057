"""Server states: the table of allowed transitions, applied as compare-and-set (core/process/states.py)."""

from __future__ import annotations

import threading

import pytest

from xgen_jupyter.core.planning.plan import EngineSettings, LaunchPlan
from xgen_jupyter.core.planning.request import LoadRequest
from xgen_jupyter.core.process.logbuffer import LogBuffer
from xgen_jupyter.core.process.roster import Roster
from xgen_jupyter.core.process.server import ManagedServer
from xgen_jupyter.core.process.states import ALLOWED, FINAL, STATES, IllegalTransition, path, transition


def _server(state: str = "planned") -> ManagedServer:
    plan = LaunchPlan("s", "llama-cpp-python", "/m.gguf", "llm", EngineSettings(2048, 512, 512, 1, 1, 0), ("x",), {}, ())
    s = ManagedServer("s", LoadRequest(model="default"), plan, LogBuffer(None), "k")
    s.state = state  # type: ignore[assignment]
    return s


PAIRS = [(a, b) for a in STATES for b in sorted(ALLOWED[a])]


@pytest.mark.parametrize("src, dst", PAIRS)
def test_every_allowed_transition_works(src: str, dst: str) -> None:
    s = _server(src)
    assert transition(s, src, dst)  # type: ignore[arg-type]
    assert s.state == dst
    assert (s.stopped_at is not None) == (dst in FINAL)


@pytest.mark.parametrize("src, dst", [("planned", "ready"), ("ready", "loading"), ("ready", "planned"),
                                      ("stopped", "starting"), ("failed", "ready"), ("stopping", "ready"),
                                      ("crashed", "ready"), ("ready", "failed"), ("planned", "failed")])
def test_impossible_transitions_raise_and_change_nothing(src: str, dst: str) -> None:
    s = _server(src)
    with pytest.raises(IllegalTransition):
        transition(s, src, dst)  # type: ignore[arg-type]
    assert s.state == src


def test_an_impossible_pair_raises_even_when_the_server_is_elsewhere() -> None:
    """The check is on the pair, not on the luck of a race: a bug shows on every run."""
    s = _server("loading")
    with pytest.raises(IllegalTransition):
        transition(s, ("ready", "loading"), "loading")  # ready -> loading is not allowed


def test_compare_fails_without_raising_when_the_server_moved_on() -> None:
    s = _server("stopping")
    assert not transition(s, "ready", "crashed")
    assert s.state == "stopping"


def test_the_table_is_closed_and_every_state_can_end() -> None:
    assert set(ALLOWED) == set(STATES) and all(set(v) <= set(STATES) for v in ALLOWED.values())
    for state in STATES:
        if state not in FINAL:
            assert path(state, "stopped"), state
    assert path("crashed", "ready") == ["planned", "starting", "loading", "ready"]
    with pytest.raises(IllegalTransition):
        path("stopped", "ready")


def _race(n: int) -> tuple[list[str], list[str], str]:
    roster = Roster()
    s = _server("ready")
    roster.add(s)
    events: list[str] = []
    roster.subscribe(lambda e: events.append(e.data["state"]))
    go = threading.Barrier(n)
    wins: list[str] = []

    def race(to: str) -> None:
        go.wait()
        if roster.transition(s, "ready", to):  # type: ignore[arg-type]
            wins.append(to)

    threads = [threading.Thread(target=race, args=("stopping" if i % 2 else "crashed",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wins, events, s.state


def test_cas_under_concurrency_has_exactly_one_winner() -> None:
    """Many threads race an unload (ready -> stopping) against a crash (ready -> crashed): one wins,
    the others see False, every event matches a real change."""
    for _ in range(200):
        wins, events, state = _race(8)
        assert len(wins) == 1 and state == wins[0] and events == wins
