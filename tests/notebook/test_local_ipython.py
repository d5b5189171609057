"""Plain IPython with no Jupyter server: the magics run engines in this process and say so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from xgen_jupyter.notebook import current
from xgen_jupyter.notebook.local_client import LocalClient
from xgen_jupyter.notebook.magics import LOCAL_NOTICE

from .conftest import DISCOVERY_VARS

pytestmark = pytest.mark.engine


@pytest.fixture()
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    for var in DISCOVERY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # no server info files at all
    current.set_client(None)
    LocalClient._shared = None
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "xgen_jupyter")
    try:
        yield ip
    finally:
        if LocalClient._shared is not None:
            LocalClient._shared.core.shutdown()
            LocalClient._shared = None
        current.set_client(None)


def test_falls_back_to_in_process_and_says_so_once(
    shell: InteractiveShell, capsys: pytest.CaptureFixture
) -> None:
    shell.run_line_magic("xgen", "ls")
    out = capsys.readouterr().out
    assert LOCAL_NOTICE in out and "no servers loaded" in out
    assert isinstance(current.get_client(), LocalClient)

    shell.run_line_magic("xgen", "load default --name loc")
    out = capsys.readouterr().out
    assert LOCAL_NOTICE not in out  # said once
    assert "ready: 'loc'" in out and "Why:" in out
    assert "100% loc: ready" in out  # the text progress bar of a terminal, not a widget

    core = LocalClient._shared.core  # type: ignore[union-attr]
    server = core.manager.get("loc")
    assert server.state == "ready" and server.pid is not None  # an engine of this process

    shell.run_cell_magic("xgen", "chat loc --max-tokens 16", "Name a colour.")
    cap = capsys.readouterr()
    assert cap.out.strip() and not cap.err, cap

    shell.run_line_magic("xgen", "ls --all")  # the box-wide view: owner, model, memory, state
    box = capsys.readouterr().out
    assert box.splitlines()[0].split() == ["OWNER", "NAME", "MODEL", "DEVICES", "GPU", "HOST", "STATE"]
    assert any(" loc " in f" {line} " and "ready" in line for line in box.splitlines()[1:])
    assert server.api_key not in box

    shell.run_line_magic("xgen", "logs loc --tail 5")
    assert len(capsys.readouterr().out.strip().splitlines()) == 5

    shell.run_line_magic("xgen", "unload ghost")
    cap = capsys.readouterr()
    assert cap.err.strip().splitlines() == [
        "xgen: no server named 'ghost' (see the loaded servers with `%xgen ls`)"
    ]

    shell.run_line_magic("xgen", "unload --all")
    assert "'loc': stopped" in capsys.readouterr().out
    assert server.state == "stopped"
