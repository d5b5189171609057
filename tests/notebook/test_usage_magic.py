"""``%xgen usage`` against a real Jupyter server process and the real default engine (loaded by
the first request): the books survive the server's restart; in-process, the kernel's own books."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.core.box.jupyter_proc import JupyterProc
from tests.notebook.conftest import jupyter_of
from xgen_jupyter.notebook.connection import Connection
from xgen_jupyter.notebook.local_client import LocalClient
from xgen_jupyter.notebook.magics import XGenMagics
from xgen_jupyter.notebook.remote_client import RemoteClient

pytestmark = pytest.mark.engine


@pytest.fixture()
def jupyter(tmp_path: Path) -> Iterator[JupyterProc]:
    yield from jupyter_of(tmp_path, "counted")


def test_usage_magic_through_the_jupyter_server(jupyter: JupyterProc, shell: InteractiveShell,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    shell.register_magics(XGenMagics(shell, client=RemoteClient(Connection(jupyter.base, jupyter.token, "the test"))))
    shell.run_line_magic("xgen", "usage")
    assert "Nothing booked for you yet" in capsys.readouterr().out
    body = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    answers = []
    for _ in range(2):
        r = httpx.post(f"{jupyter.base}/xgen/v1/chat/completions", json=body, headers=jupyter.headers, timeout=180,
                       trust_env=False)
        assert r.status_code == 200, r.text
        answers.append(r.json()["usage"])
    shell.run_line_magic("xgen", "usage --json")
    (mine,) = json.loads(capsys.readouterr().out)
    # Jupyter's shared token names nobody (a random user per request): counted as the server's own user.
    assert (mine["user"], mine["model"], mine["requests"]) == ("counted", "default", 2), mine
    assert mine["completion_tokens"] == sum(a["completion_tokens"] for a in answers)
    assert mine["prompt_tokens"] == sum(a["prompt_tokens"] for a in answers) and mine["host_byte_seconds"] > 0
    shell.run_line_magic("xgen", "usage --box")
    out = capsys.readouterr().out
    assert "completion tok" in out and "default" in out and "counted" in out
    # The books are the box registry's: a restarted Jupyter server (its engine gone) finds them.
    jupyter.stop()
    jupyter.start()
    shell.run_line_magic("xgen", "usage --box --json")
    (after,) = json.loads(capsys.readouterr().out)
    assert after["requests"] == 2 and after["prompt_tokens"] == mine["prompt_tokens"]
    assert after["host_byte_seconds"] >= mine["host_byte_seconds"], (after, mine)


def test_usage_magic_in_process_reads_the_kernels_books(shell: InteractiveShell, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       default_model: str) -> None:
    from xgen_jupyter.core.config import CoreConfig
    from xgen_jupyter.core.service import XGenCore

    core = XGenCore(CoreConfig(state_dir=tmp_path / "state", shared_dir=tmp_path / "shared"))
    try:
        shell.register_magics(XGenMagics(shell, client=LocalClient(core)))
        server = core.load({"model": default_model, "name": "mine", "n_ctx": 512, "n_threads": 1})
        deadline = time.monotonic() + 120
        while core.manager.get("mine").state not in ("ready", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert core.manager.get("mine").state == "ready"
        time.sleep(1.0)
        shell.run_line_magic("xgen", "usage --json")
        out = capsys.readouterr().out  # after a line saying the engines run in this kernel
        (row,) = json.loads(out[out.index("["):])
        planned = server.plan.memory.host_total
        # Planned host bytes times the seconds it has been ready, to its owner (no proxy: no requests).
        assert (row["model"], row["requests"]) == ("mine", 0) and row["host_byte_seconds"] >= planned * 1.0, row
    finally:
        core.shutdown()
