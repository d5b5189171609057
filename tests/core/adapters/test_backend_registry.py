"""The backend registry: ids are looked up, never parsed, and a new backend is one adapter module
(solo_backend.py) plus one row, then planned, listed and started like the built-in ones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from solo_backend import SOLO, SoloServerAdapter, register_solo

from tests.conftest import pid_alive, post_json
from xgen_jupyter.core.adapters import registry
from xgen_jupyter.core.adapters.catalog import discover_backends, make_adapter
from xgen_jupyter.core.adapters.llama_server import LlamaServerAdapter
from xgen_jupyter.core.builds.install import installed_engines
from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.errors import BackendUnavailable, RequestError
from xgen_jupyter.core.hardware.types import CPUInfo, HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.backend import BackendInstall, fallback_order
from xgen_jupyter.core.planning.context import GiB, PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request

CPU_BOX = HardwareReport("test", (), CPUInfo(8, 16, 64 * GiB, 48 * GiB, "test cpu"), ())
BUILT = installed_engines()


@pytest.fixture()
def solo() -> Iterator[None]:
    register_solo()
    yield
    registry.unregister(SOLO)


@pytest.fixture(scope="module")
def gemma(default_model: str):
    return inspect_model(default_model)


def installs(*available: str, flags: frozenset[str] = frozenset()) -> dict[str, BackendInstall]:
    return {
        b: BackendInstall(
            registry.row(b), b in available, f"/opt/{b}" if b in available else None, flags=flags
        )
        for b in registry.backend_ids()
    }


def make(facts, backends: dict[str, BackendInstall], **req: object):
    request = parse_request({"model": "default", **req}, registry.backend_ids())
    return plan(PlanInputs(CPU_BOX, facts, request, backends, "m"))


def test_an_unknown_id_is_a_clear_error_that_lists_the_known_ids() -> None:
    with pytest.raises(RequestError) as err:
        registry.row("llama-server-quantum")
    assert "unknown backend 'llama-server-quantum'" in str(err.value)
    assert all(b in (err.value.hint or "") for b in registry.backend_ids())
    with pytest.raises(RequestError, match="is not one of: auto, llama-server-vulkan"):
        parse_request({"model": "m", "backend": "llama-server-quantum"}, registry.backend_ids())


def test_the_planner_refuses_an_id_it_has_no_row_for(gemma) -> None:
    # A request parsed without the id list (a remote node's) still meets a clear error in the planner.
    request = parse_request({"model": "default", "backend": "quantum"})
    with pytest.raises(RequestError, match=r"unknown backend 'quantum'.*llama-server-cpu"):
        plan(PlanInputs(CPU_BOX, gemma, request, installs("llama-server-cpu"), "m"))


def test_register_refuses_a_taken_id_and_ids_that_are_not_ids() -> None:
    for bad in ("llama-server-cpu", "auto", "Two Words", ""):
        with pytest.raises(RequestError):
            registry.register(bad, LlamaServerAdapter, device="cpu", order={}, install_hint="")
    assert registry.backend_ids()[0] == "llama-server-vulkan" and "" not in registry.backend_ids()


def test_an_id_without_a_dash_is_looked_up_not_parsed(solo) -> None:
    row = registry.row(SOLO)
    assert (row.engine, row.device, row.formats) == ("llama-server", "cpu", ("gguf",))
    assert row.traits == SoloServerAdapter.traits and not row.traits.jinja and row.traits.slots_share_ctx
    adapter = make_adapter(BackendInstall(row, True, "/opt/solo"))
    assert isinstance(adapter, SoloServerAdapter) and (adapter.backend, adapter.device) == (SOLO, "cpu")
    with pytest.raises(BackendUnavailable, match="solo is not available"):
        make_adapter(BackendInstall(row, False, reason="not installed"))


def test_a_new_row_takes_its_place_in_the_fallback_orders(solo) -> None:
    inst = installs()
    assert fallback_order(inst, "gguf", "cpu") == ("llama-server-cpu", SOLO, "llama-cpp-python")
    assert SOLO not in fallback_order(inst, "gguf", "nvidia")  # no place there: never chosen on its own
    assert SOLO not in fallback_order(inst, "hf", "cpu")  # it serves GGUF only
    registry.unregister(SOLO)
    assert fallback_order(installs(), "gguf", "cpu") == ("llama-server-cpu", "llama-cpp-python")


def test_a_new_backend_is_planned_with_its_own_traits(solo, gemma) -> None:
    every = installs(*registry.backend_ids(), flags=frozenset({"--no-jinja", "--jinja"}))
    mine, stock = make(gemma, every, backend=SOLO), make(gemma, every, backend="llama-server-cpu")
    assert (mine.backend, stock.backend) == (SOLO, "llama-server-cpu")
    # The same engine binary; the traits, not the name, decide. Flash attention: llama-server's
    # `auto` turns it on on a CPU, solo's means off, and the memory estimate follows (without
    # flash attention the attention scores take a compute buffer of their own).
    assert _after(stock.argv, "--flash-attn") == "auto" and _after(mine.argv, "--flash-attn") == "off"
    assert mine.memory.compute > stock.memory.compute and mine.memory.kv_cache == stock.memory.kv_cache
    # Jinja: a model with its own template gets --jinja from llama-server, never from solo.
    templated = replace(gemma, has_chat_template=True)
    stock_t, mine_t = make(templated, every, backend="llama-server-cpu"), make(templated, every, backend=SOLO)
    assert "--jinja" in stock_t.argv and "jinja-template" in _rules(stock_t)
    assert (
        "--jinja" not in mine_t.argv
        and "--no-jinja" in mine_t.argv
        and "jinja-template" not in _rules(mine_t)
    )
    # The rest of llama-server's facts hold for it: one slot on the CPU, the chat format from
    # the architecture (gemma's GGUF has no template), and slots that share -c.
    assert {"cpu-parallel-1", "chat-template-missing"} <= _rules(mine)
    assert make(gemma, every, backend=SOLO, n_parallel=2).settings.n_ctx == 2 * mine.settings.n_ctx
    # Chosen on its own where its row puts it: next in line when llama-server's CPU build is missing.
    auto = make(gemma, installs(SOLO, "llama-cpp-python"))
    assert auto.backend == SOLO and auto.fallbacks == ("llama-cpp-python",)
    assert auto.reasons[0].why == "llama-server-cpu is not installed here, so the next in line"


def _after(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _rules(p) -> set[str]:
    return {r.rule for r in p.reasons}


def test_a_new_backend_is_listed_with_its_install_hint_when_missing(solo, tmp_path: Path) -> None:
    found = discover_backends(CoreConfig(state_dir=tmp_path, engines_dir=tmp_path / "none"))
    assert list(found)[-1] == SOLO  # registry order
    assert found[SOLO].to_dict() == {
        "backend": SOLO, "available": False, "executable": None, "source": "",
        "reason": "not installed: put llama-server on PATH as `solo`", "flags": [],
    }  # fmt: skip


@pytest.mark.engine
@pytest.mark.skipif(
    "llama-server-cpu" not in BUILT, reason="llama-server-cpu not built: run scripts/ci-engines.sh"
)
def test_a_new_backend_is_listed_planned_and_started(
    solo, core_factory, tmp_path, monkeypatch, capsys
) -> None:
    binary = str(BUILT["llama-server-cpu"])
    # Listed: found on PATH under its id, in the CLI's list as in GET xgen/api/backends.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / SOLO).symlink_to(binary)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    from xgen_jupyter import cli

    assert cli.main(["builds", "list"]) == 0
    assert any(
        line.split()[:3] == [SOLO, "yes", str(bindir / SOLO)] for line in capsys.readouterr().out.splitlines()
    )
    core = core_factory(allowed_backends=[SOLO], binaries={SOLO: binary})
    listed = core.backends()[SOLO].to_dict()
    assert (listed["available"], listed["executable"], listed["source"]) == (True, binary, "config")
    assert "--no-jinja" in listed["flags"]
    # Planned: the only allowed backend, chosen by its row's place in the CPU order.
    p = core.plan(core.request({"model": "default"}))
    assert p.backend == SOLO and _after(p.argv, "--flash-attn") == "off" and "--jinja" not in p.argv
    # Started: a real llama-server answers a chat request through the gemma template it detected.
    server = core.load({"model": "default", "name": "solo1", "n_ctx": 1024})
    core.manager.wait("solo1", timeout=180)
    assert server.state == "ready", server.logs.text_tail()
    assert server.backend == SOLO and isinstance(core.adapter(SOLO), SoloServerAdapter)
    with open(f"/proc/{server.pid}/cmdline", "rb") as f:  # what really runs: solo's command line
        assert _after(tuple(a.decode() for a in f.read().split(b"\0")), "--flash-attn") == "off"
    msg = {"model": "solo1", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    status, out = post_json(f"{server.endpoint}/v1/chat/completions", msg, server.api_key)
    assert status == 200 and out["choices"][0]["message"]["content"].strip()
    pid = server.pid
    core.unload("solo1")
    assert not pid_alive(pid)
