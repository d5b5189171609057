"""``%xgen usage`` against a real Jupyter server process and the real default engine (loaded by
the first request), and in-process (no proxy: a clear error)."""

from __future__ import annotations

import json
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
    assert "No requests" in capsys.readouterr().out
    body = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    for _ in range(2):
        r = httpx.post(f"{jupyter.base}/xgen/v1/chat/completions", json=body, headers=jupyter.headers, timeout=180,
                       trust_env=False)
        assert r.status_code == 200, r.text
    tokens = r.json()["usage"]["completion_tokens"]
    shell.run_line_magic("xgen", "usage --json")
    rows = {(row["user"], row["model"]): row for row in json.loads(capsys.readouterr().out)}
    mine = [row for (user, model), row in rows.items() if model == "default" and row["requests"]]
    assert len(mine) == 1 and mine[0]["requests"] == 2 and mine[0]["completion_tokens"] >= tokens, rows
    # Jupyter's shared token names nobody (a random user per request): counted as the server's own user.
    assert mine[0]["user"] == "counted" and mine[0]["host_gib_s"] > 0, mine
    shell.run_line_magic("xgen", "usage")
    out = capsys.readouterr().out
    assert "completion tok" in out and "default" in out


def test_usage_magic_without_a_jupyter_server_says_why(shell: InteractiveShell, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from xgen_jupyter.core.config import CoreConfig
    from xgen_jupyter.core.service import XGenCore

    core = XGenCore(CoreConfig(state_dir=tmp_path / "state"))
    try:
        shell.register_magics(XGenMagics(shell, client=LocalClient(core)))
        shell.run_line_magic("xgen", "usage")
        captured = capsys.readouterr()
        assert "usage is counted by a Jupyter server's proxy" in captured.out + captured.err
    finally:
        core.shutdown()
