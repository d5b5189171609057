"""notebooks/ run start to finish with nbclient against the real Jupyter server, outputs checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO, JupyterServer

pytestmark = pytest.mark.engine


def run_notebook(name: str, server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # The kernel nbclient starts is not the server's child: it finds the server through these.
    monkeypatch.setenv("XGEN_SERVER_URL", server.url)
    monkeypatch.setenv("XGEN_TOKEN", server.token)
    monkeypatch.setenv("PYTHONPATH", server.env["PYTHONPATH"])
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    return nb


def outputs(nb: Any) -> dict[str, list[dict[str, Any]]]:
    """Outputs by the cell's tag; and no cell may have an error or an xgen error line."""
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.outputs:
            assert o.output_type != "error", f"{cell.source!r}: {o.get('ename')}: {o.get('evalue')}"
            if o.output_type == "stream" and o.name == "stderr":
                assert "xgen:" not in o.text and "Traceback" not in o.text, (cell.source, o.text)
        tags = cell.metadata.get("tags") or []
        assert tags, f"every code cell is tagged for this test: {cell.source!r}"
        by_tag[tags[0]] = cell.outputs
    return by_tag


def stdout(outs: list[dict[str, Any]]) -> str:
    return "".join(o.text for o in outs if o.output_type == "stream" and o.name == "stdout")


def rich(outs: list[dict[str, Any]], mime: str) -> str:
    return "".join(str(o.get("data", {}).get(mime, "")) for o in outs if o.output_type != "stream")


def test_quickstart(jupyter_server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = outputs(run_notebook("quickstart.ipynb", jupyter_server, tmp_path, monkeypatch))
    assert "Detection:" in stdout(out["gpus"])
    assert "ready: 'chat'" in stdout(out["load"]) and "Why:" in stdout(out["load"])
    assert stdout(out["chat"]).strip(), "the streamed chat answer is empty"
    assert stdout(out["openai"]).strip(), "the OpenAI client's answer is empty"
    pieces = stdout(out["stream"]).rsplit("(", 1)[-1]
    assert int(pieces.split()[0]) >= 2, stdout(out["stream"])  # streamed in pieces, not one lump
    assert "ready: 'embed'" in stdout(out["load-embed"]) and "embed-batch" in stdout(out["load-embed"])
    assert "2 vectors of width 640" in stdout(out["embeddings"]), stdout(out["embeddings"])
    assert rich(out["panel"], "application/vnd.jupyter.widget-view+json"), (
        "the panel widget was not displayed"
    )
    assert "chat" in stdout(out["ls"]) and "embed" in stdout(out["ls"])
    assert "'chat': stopped" in stdout(out["unload"]) and "'embed': stopped" in stdout(out["unload"])


def test_explain_plan(
    jupyter_server: JupyterServer, remote: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = outputs(run_notebook("explain_plan.ipynb", jupyter_server, tmp_path, monkeypatch))
    plan = remote.plan({"model": "default"})
    assert f"Server 'default': {plan['backend']}" in stdout(out["plan"])
    assert f"backend: {plan['backend']}" in stdout(out["reasons"])
    table = rich(out["flags"], "text/markdown")
    assert "| flag | value | rule | why |" in table
    for reason in plan["reasons"]:  # every rule of this box's plan is explained, with its why
        assert reason["rule"] in table and reason["why"] in table, reason
    assert "--model" in table  # the flags come from the plan's real command line
    assert "embed-batch" in stdout(out["embed-plan"])
    assert "n_parallel kept: 4" in stdout(out["user-value"])
