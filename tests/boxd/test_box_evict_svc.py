"""Eviction by memory in the box service, box-wide: three real users' Jupyter servers (runuser) ask
their own proxies for the catalog name "gemma", not loaded, on a box whose injected hardware report
has host RAM for one engine only (CPU engines reserve host RAM; the service's registry admits against
it). Each gets an answer: the idle server of another user is unloaded for the new one (the box policy
``--evict-idle-others 0`` allows it), with the reason in its status and log; a server with a stream in
flight is never unloaded: the load that would need it is refused and the stream runs to its end."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import websocket

from xgen_jupyter.core.hardware.cpu import CPUDetector

from .box_harness import BoxProc
from .box_jupyter import UserJupyter

pytestmark = pytest.mark.engine
MiB = 1024**2


def one_engine_box(core_factory: Any, models: Path, root: Path) -> Path:
    """A report with RAM for one planned engine plus the registry's 512 MiB margin, not two."""
    probe = core_factory(model_dirs=[str(models)], allowed_backends=["llama-cpp-python"])
    need = probe.plan(probe.request({"model": "gemma"})).memory.host_total
    total = int(need * 1.5) + 512 * MiB
    cpu = {**CPUDetector().detect_cpu().to_dict(), "memory_total": total, "memory_available": total}
    path = root / "one-engine.json"
    path.write_text(json.dumps({"gpus": [], "cpu": cpu}))
    path.chmod(0o644)
    return path


def ask(j: UserJupyter, stream: bool = False, tokens: int = 4) -> httpx.Response:
    body = {"model": "gemma", "messages": [{"role": "user", "content": "Count from 1 to 200."}],
            "max_tokens": tokens, "stream": stream}
    return httpx.post(f"{j.base}/xgen/v1/chat/completions", json=body, headers=j.headers, timeout=300,
                      trust_env=False)


def log_tail(j: UserJupyter, name: str, n: int = 20) -> list[str]:
    sock = websocket.create_connection(f"ws://127.0.0.1:{j.port}/xgen/api/servers/{name}/logs?tail={n}", timeout=30,
                                       header=[f"Authorization: token {j.token}"])
    lines: list[str] = []
    try:
        while len(lines) < n:
            msg = json.loads(sock.recv())
            lines.append(msg["line"]["text"])
            if "unloaded for" in lines[-1]:
                break
    except websocket.WebSocketTimeoutException:
        pass
    finally:
        sock.close()
    return lines


def test_idle_server_of_another_user_is_evicted_never_one_streaming(unix_users, box_root, shared_models,
                                                                     core_factory):
    report = one_engine_box(core_factory, shared_models, box_root)
    box = BoxProc(box_root, shared_models, extra=["--evict-idle-others", "0"],
                  env={"XGEN_HARDWARE_REPORT": str(report)}).start()
    xgen = {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]}
    users = alice, bob, carol = [UserJupyter(box_root, u, xgen) for u in ("alice", "bob", "carol")]
    threads = [threading.Thread(target=j.start) for j in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        first = ask(alice)
        assert first.status_code == 200 and first.json()["choices"][0]["message"], first.text
        assert alice.api("GET", "servers/gemma").json()["state"] == "ready"

        # bob's first request: no room while alice's server holds the RAM; it is idle, so it goes.
        body = {"model": "gemma", "messages": [{"role": "user", "content": "Count from 1 to 300, one per line."}],
                "max_tokens": 300, "stream": True}
        with httpx.Client(timeout=300, trust_env=False) as http, \
                http.stream("POST", f"{bob.base}/xgen/v1/chat/completions", json=body, headers=bob.headers) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            chunks: list[str] = []
            for ln in lines:
                if ln.startswith("data:"):
                    chunks.append(ln)
                    break  # bob's stream is in flight: the service holds a slot of bob/gemma for it
            gone = alice.api("GET", "servers/gemma").json()
            assert gone["state"] == "stopped", gone
            assert gone["stop_reason"].startswith("unloaded for bob/gemma after 0 min idle"), gone["stop_reason"]
            assert any("unloaded for bob/gemma" in line for line in log_tail(alice, "gemma"))

            # carol's first request now: the only server that could make room is streaming: refused.
            refused = ask(carol)
            held = bob.api("GET", "servers/gemma").json()
            chunks += [ln for ln in lines if ln.startswith("data:")]
        assert refused.status_code == 409 and "refused" in refused.json()["error"]["message"], refused.text
        assert held["state"] == "ready" and held["stop_reason"] is None, held  # never evicted mid-stream
        assert chunks[-1] == "data: [DONE]" and len(chunks) > 10, chunks[-3:]
        assert not any('"error"' in c for c in chunks), [c for c in chunks if "error" in c]

        # Now bob's is idle: carol's request evicts it and is answered.
        third = ask(carol)
        assert third.status_code == 200 and third.json()["choices"][0]["message"], third.text
        evicted = bob.api("GET", "servers/gemma").json()
        assert evicted["state"] == "stopped" and evicted["stop_reason"].startswith("unloaded for carol/gemma"), evicted
        box_view = {(s["owner"], s["name"]): s["state"] for s in carol.api("GET", "servers?scope=box").json()["servers"]
                    if s["host_bytes"] > 0}
        assert box_view == {("carol", "gemma"): "ready"}, box_view  # one engine's RAM reserved, as the box allows
        assert "xgen box: alice/gemma: unloaded for bob/gemma" in box.log_text()
    finally:
        stops = [threading.Thread(target=j.stop) for j in users]  # each may take 20 s: at once
        for t in stops:
            t.start()
        for t in stops:
            t.join()
        box.stop()
