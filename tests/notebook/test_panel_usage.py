"""The panel's Usage section against a real Jupyter server process and the real default engine: the
books of GET xgen/api/usage, yours, then the whole box's when the scope changes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.core.box.jupyter_proc import JupyterProc
from tests.notebook.conftest import jupyter_of
from xgen_jupyter.notebook.connection import Connection
from xgen_jupyter.notebook.panel import XGenPanel
from xgen_jupyter.notebook.panel_usage import usage_html
from xgen_jupyter.notebook.remote_client import RemoteClient

pytestmark = pytest.mark.engine


@pytest.fixture()
def jupyter(tmp_path: Path) -> Iterator[JupyterProc]:
    yield from jupyter_of(tmp_path, "panelist")


def test_usage_section_shows_the_books(jupyter: JupyterProc) -> None:
    client = RemoteClient(Connection(jupyter.base, jupyter.token, "the test"))
    p = XGenPanel(client, live=False)
    try:
        p.usage.refresh()
        assert p.usage.rows == [] and "nothing booked for you yet" in p.usage.table.value
        body = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
        r = httpx.post(f"{jupyter.base}/xgen/v1/chat/completions", json=body, headers=jupyter.headers, timeout=180,
                       trust_env=False)
        assert r.status_code == 200, r.text
        tokens = r.json()["usage"]
        p.usage.refresh()
        (row,) = p.usage.rows
        assert (row["user"], row["model"], row["requests"]) == ("panelist", "default", 1)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (tokens["prompt_tokens"], tokens["completion_tokens"])
        shown = p.usage.table.value
        assert f"{tokens['prompt_tokens']}/{tokens['completion_tokens']}" in shown and "<th" in shown
        assert ">user<" not in shown  # mine: no user column
        p.usage.scope.value = "box"  # refreshed on a thread of its own
        deadline = time.monotonic() + 30
        while ">user<" not in p.usage.table.value and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ">panelist<" in p.usage.table.value
    finally:
        p.close()


def test_usage_html_escapes_and_says_when_empty() -> None:
    assert "nothing booked on this box yet" in usage_html([], box=True)
    row = {"user": "<b>eve</b>", "model": "m&m", "requests": 2, "prompt_tokens": 3, "completion_tokens": 4,
           "gpu_byte_seconds": 2 * 1024**3, "host_byte_seconds": 0}
    out = usage_html([row], box=True)
    assert "&lt;b&gt;eve&lt;/b&gt;" in out and "m&amp;m" in out and ">2.0<" in out and "<b>eve" not in out
