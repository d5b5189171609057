"""A Jupyter server whose models run in the box service, with the service down: its xgen calls
wait for the service off the IOLoop, so the loop keeps serving other requests meanwhile, and each
waiting call ends in a 503 that names the socket and says what to do. Where models run shows in
GET xgen/api/hardware, the events hello, `%xgen gpus` and the ipywidgets panel."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import websocket

from tests.core.box.jupyter_proc import JupyterProc

pytestmark = pytest.mark.engine

SLOW_CALLS = 8  # more than the IOLoop's default thread pool has on a 2-core box (6)


def timed(j: JupyterProc, path: str, model: str | None = None) -> tuple[float, httpx.Response]:
    """GET ``path``, or POST a chat request for ``model`` to it (the proxy)."""
    t = time.monotonic()
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    r = httpx.request("POST" if model else "GET", f"{j.base}/{path}", headers=j.headers, timeout=120,
                      trust_env=False, **({"json": body} if model else {}))
    return time.monotonic() - t, r


def hello(j: JupyterProc) -> dict:
    ws = websocket.create_connection(f"ws://127.0.0.1:{j.port}/xgen/api/events?interval=0", timeout=60,
                                     header=[f"Authorization: token {j.token}"])
    try:
        return dict(json.loads(ws.recv()))
    finally:
        ws.close()


def test_service_down_keeps_the_ioloop_free_and_says_so(box_factory, box_root, shared_models, capsys):
    box = box_factory()
    j = JupyterProc(box_root, "root", {"shared_dir": str(box_root / "shared"), "model_dirs": [str(shared_models)]})
    j.start()
    try:
        where = f"box service at {box.socket}, user root"
        assert j.api("GET", "hardware").json()["xgen_core"] == where
        first = hello(j)
        assert first["kind"] == "hello" and first["xgen_core"] == where and first["servers"] == []
        check_notebook_side(j, where, capsys)

        box.kill()  # the socket file stays: every connect is refused until the service is back
        with ThreadPoolExecutor(SLOW_CALLS + 4) as pool:
            slow = [pool.submit(timed, j, "xgen/api/servers") for _ in range(SLOW_CALLS)]
            # The proxy too: a name of ours, a name someone shared, the model list.
            proxied = [pool.submit(timed, j, "xgen/v1/chat/completions", m) for m in ("chat", "bob/chat")]
            proxied.append(pool.submit(timed, j, "xgen/v1/models"))
            ws_error = pool.submit(hello, j)
            probes: list[float] = []
            time.sleep(0.5)  # the slow calls are waiting for the service now
            while not all(f.done() for f in slow + proxied):
                for path in ("api/status", "xgen/api/pulls"):  # neither needs the service
                    took, r = timed(j, path)
                    assert r.status_code == 200, r.text
                    probes.append(took)
                time.sleep(0.1)
            waited = [f.result() for f in slow]
        for _, r in waited:
            body = r.json()
            assert r.status_code == 503 and body["error"] == "ServiceUnavailable", r.text
            assert str(box.socket) in body["message"] and "does not answer" in body["message"], body
            assert "retry" in (body["hint"] or ""), body
        slowest_probe, quickest_wait = max(probes), min(took for took, _ in waited)
        print(f"{len(probes)} probes, slowest {slowest_probe:.3f} s; the {SLOW_CALLS} calls waited "
              f"{quickest_wait:.2f}-{max(t for t, _ in waited):.2f} s")
        # Blocking the loop, each probe would wait for a whole retry window (5 s) or several.
        assert quickest_wait >= 4.0 and len(probes) >= 10
        assert slowest_probe < quickest_wait / 4, (probes, waited)
        for f in proxied:
            took, r = f.result()
            assert r.status_code == 503 and str(box.socket) in r.json()["error"]["message"], r.text
            assert took >= 4.0 and slowest_probe < took / 4
        msg = ws_error.result()  # the events websocket says why instead of hanging or closing mute
        assert msg["kind"] == "error" and msg["error"] == "ServiceUnavailable" and str(box.socket) in msg["message"]

        box.start()  # back: the same Jupyter server works again without a restart
        r = j.api("GET", "servers")
        assert r.status_code == 200 and r.json()["servers"] == [], r.text
        assert hello(j)["xgen_core"] == where
    finally:
        j.stop()


def check_notebook_side(j: JupyterProc, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`%xgen gpus` prints where models run; the ipywidgets panel shows it (from the hello)."""
    from xgen_jupyter.notebook.connection import Connection
    from xgen_jupyter.notebook.magics import XGenMagics
    from xgen_jupyter.notebook.panel import XGenPanel
    from xgen_jupyter.notebook.remote_client import RemoteClient

    client = RemoteClient(Connection(j.base, j.token, "test"))
    capsys.readouterr()
    XGenMagics(None, client).xgen("gpus")
    assert f"models run: {where}" in capsys.readouterr().out
    panel = XGenPanel(client, interval=0)
    try:
        deadline = time.monotonic() + 30
        while not panel.events_seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert panel.gpus.core.value == f"Models run: {where}"
    finally:
        panel.close()
