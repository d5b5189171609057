"""ProcessManager end to end with the real llama-cpp-python engine on the real default model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, children_pids, pid_alive, post_json
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport

pytestmark = pytest.mark.engine
CPU_ONLY = {"allowed_backends": ["llama-cpp-python"]}


def _chat(endpoint: str, key: str | None, model: str) -> tuple[int, dict]:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
    return post_json(f"{endpoint}/v1/chat/completions", body, key, timeout=120)


def test_default_model_serves_chat_with_key_and_unload_leaves_nothing(core_factory):
    core = core_factory(**CPU_ONLY)
    server = core.load({"model": "default", "name": "gem"})
    core.manager.wait("gem", timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    assert server.backend == "llama-cpp-python"
    status, out = _chat(server.endpoint, server.api_key, "gem")
    assert status == 200
    assert out["choices"][0]["message"]["content"].strip()
    assert _chat(server.endpoint, None, "gem")[0] == 401
    assert _chat(server.endpoint, "wrong-key", "gem")[0] == 401
    # The key is in the engine's environment, not on its command line (readable by anyone in ps).
    import psutil

    assert server.api_key not in " ".join(psutil.Process(server.pid).cmdline())
    assert server.api_key not in "\n".join(ln.text for ln in server.logs.tail(None))
    pid = server.pid
    core.unload("gem")
    assert server.state == "stopped"
    assert not pid_alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group is gone


def test_kill_after_ready_is_crashed_within_a_second(core_factory):
    core = core_factory(**CPU_ONLY)
    server = core.load({"model": "default", "name": "victim"})
    core.manager.wait("victim", timeout=120)
    assert server.state == "ready"
    t0 = time.monotonic()
    os.kill(server.pid, signal.SIGKILL)
    core.manager.wait("victim", timeout=1.0, until={"crashed"})
    assert server.state == "crashed"
    assert time.monotonic() - t0 < 1.0
    assert server.error and server.error["id"] == "killed"
    assert "SIGKILL" in server.error["summary"]
    assert server.logs.tail(5), "the log is kept after a crash"


def test_engine_failing_at_load_is_classified_and_falls_back(core_factory, tmp_path):
    """A ROCm engine on an MI300X page-faults (replayed from the seed's report); the
    manager classifies it and falls back down the chain to a real CPU engine."""
    mi300x = GPUInfo(0, "AMD Instinct MI300X", "amd", 192 * 1024**3, 190 * 1024**3, "gfx942", None, "CDNA", False, "0000:05:00.0", source="amdsmi")
    cpu = CPUInfo(2, 2, 24 * 1024**3, 20 * 1024**3, "test")
    report = HardwareReport("amdsmi", (mi300x,), cpu)
    replay = str(REPO / "tests" / "fixtures" / "replay" / "rocm_page_fault.sh")
    core = core_factory(
        hardware=lambda refresh=False: report,
        binaries={"llama-server-rocm": replay},
        allowed_backends=["llama-server-rocm", "llama-cpp-python"],
    )
    server = core.load({"model": "default", "name": "faulty"})
    assert server.plan.backend == "llama-server-rocm"
    assert "--fit" in server.plan.argv and "off" in server.plan.argv
    core.manager.wait("faulty", timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    assert [a.backend for a in server.attempts] == ["llama-server-rocm", "llama-cpp-python"]
    first = server.attempts[0]
    assert first.cause is not None and first.cause.id == "gpu-page-fault"
    assert first.returncode == 139
    log = "\n".join(ln.text for ln in server.logs.tail(None))
    assert "GPU page fault detected" in log and "falling back to llama-cpp-python" in log


def test_engine_failing_with_no_fallback_is_failed_with_cause_and_tail(core_factory):
    mi300x = GPUInfo(0, "AMD Instinct MI300X", "amd", 192 * 1024**3, 190 * 1024**3, "gfx942", None, "CDNA", False, source="amdsmi")
    report = HardwareReport("amdsmi", (mi300x,), CPUInfo(2, 2, 24 * 1024**3, 20 * 1024**3))
    replay = str(REPO / "tests" / "fixtures" / "replay" / "rocm_page_fault.sh")
    core = core_factory(
        hardware=lambda refresh=False: report,
        binaries={"llama-server-rocm": replay},
        allowed_backends=["llama-server-rocm"],
    )
    server = core.load({"model": "default", "name": "doomed"})
    core.manager.wait("doomed", timeout=30)
    assert server.state == "failed"
    assert server.error["id"] == "gpu-page-fault"
    assert "Memory access violation" in server.error["log_tail"]


def test_port_taken_between_allocation_and_bind_is_retried(core_factory, monkeypatch):
    import socket

    from xgen_jupyter.core.process import manager as mgr

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real = mgr.free_port
    monkeypatch.setattr(mgr, "free_port", lambda host: next(ports, None) or real(host))
    try:
        core = core_factory(**CPU_ONLY)
        server = core.load({"model": "default", "name": "racer"})
        core.manager.wait("racer", timeout=120)
        assert server.state == "ready", server.logs.text_tail()
        assert server.attempts[0].cause is not None and server.attempts[0].cause.id == "port-in-use"
        assert server.attempts[-1].port != taken
    finally:
        squatter.close()


def test_two_concurrent_loads_of_one_name_give_one_server(core_factory):
    import threading

    core = core_factory(**CPU_ONLY)
    got = []
    threads = [threading.Thread(target=lambda: got.append(core.load({"model": "default", "name": "twin"}))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in got}) == 1
    core.manager.wait("twin", timeout=120)
    assert len(got[0].attempts) == 1


def test_sigkill_of_the_manager_leaves_no_engine(tmp_path):
    script = tmp_path / "manager.py"
    script.write_text(
        "import sys, time\n"
        "from xgen_jupyter.core.config import CoreConfig\n"
        "from xgen_jupyter.core.service import XGenCore\n"
        f"core = XGenCore(CoreConfig(state_dir={str(tmp_path)!r}, allowed_backends=['llama-cpp-python']))\n"
        "s = core.load({'model': 'default', 'name': 'orphan'})\n"
        "core.manager.wait('orphan', timeout=120)\n"
        "print(s.state, s.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        state, pid = proc.stdout.readline().split()
        assert state == "ready"
        engine = int(pid)
        assert pid_alive(engine)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while pid_alive(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(engine)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"model": "/nonexistent/model.gguf"}, "not found"),
        ({"model": "default", "backend": "llama-server-quantum"}, "backend"),
        ({"model": "default", "n_ctx": -5}, "n_ctx"),
        ({"model": "default", "n_ctx": 10**9}, "n_ctx"),
        ({"model": "default", "n_gpu_layers": "lots"}, "n_gpu_layers"),
        ({"model": "default", "n_parallel": 2.5}, "n_parallel"),
        ({"model": "default", "name": "rm -rf /;"}, "name"),
        ({"model": "default", "colour": "blue"}, "unknown field"),
    ],
)
def test_bad_requests_are_refused_before_anything_spawns(core_factory, data, needle):
    from xgen_jupyter.core.errors import XGenError

    core = core_factory(**CPU_ONLY)
    before = children_pids()
    with pytest.raises(XGenError) as err:
        core.load(data)
    assert needle.lower() in str(err.value).lower()
    assert children_pids() == before
    assert core.manager.servers() == []


def _bad_files(tmp_path: Path, default_model: str) -> dict[str, Path]:
    text = tmp_path / "notes.gguf"
    text.write_text("this is not a model\n" * 10)
    trunc = tmp_path / "cut.gguf"
    with open(default_model, "rb") as f:
        trunc.write_bytes(f.read(1_000_000))
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    return {"text": text, "truncated": trunc, "folder": folder}


@pytest.mark.parametrize("kind", ["text", "truncated", "folder"])
def test_bad_model_files_are_refused_before_anything_spawns(core_factory, tmp_path, default_model, kind):
    from xgen_jupyter.core.errors import ModelError

    path = _bad_files(tmp_path, default_model)[kind]
    core = core_factory(**CPU_ONLY)
    before = children_pids()
    with pytest.raises(ModelError) as err:
        core.load({"model": str(path)})
    assert str(path.name) in str(err.value) or "model" in str(err.value).lower()
    assert children_pids() == before


def test_embedding_server_pools_to_one_vector_per_input(core_factory):
    core = core_factory(**CPU_ONLY)
    server = core.load({"model": "default", "name": "emb", "server_type": "embedding"})
    core.manager.wait("emb", timeout=120)
    assert server.state == "ready", server.logs.text_tail()
    body = json.dumps({"model": "emb", "input": ["GPU boxes are shared.", "hello"]}).encode()
    req = urllib.request.Request(f"{server.endpoint}/v1/embeddings", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {server.api_key}")
    with urllib.request.urlopen(req, timeout=120) as r:
        data = json.load(r)["data"]
    assert len(data) == 2
    assert all(len(d["embedding"]) == 640 and isinstance(d["embedding"][0], float) for d in data)
