"""``%xgen pull``: in plain IPython (pulled in the kernel) and through a real Jupyter server
(POST xgen/api/pulls, the job followed), both against the local hub mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.core.box.jupyter_proc import JupyterProc
from tests.hub_mirror import HubMirror
from tests.model_files import write_gguf
from xgen_jupyter.core.errors import ModelError
from xgen_jupyter.notebook import current
from xgen_jupyter.notebook.connection import Connection
from xgen_jupyter.notebook.local_client import LocalClient
from xgen_jupyter.notebook.pull import run_pull
from xgen_jupyter.notebook.remote_client import RemoteClient

from .conftest import DISCOVERY_VARS


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubMirror]:
    m = HubMirror()
    m.add("acme/tiny-GGUF", {"tiny-Q4_K_M.gguf": write_gguf(tmp_path / "q4.gguf", n_vocab=20000),
                             "tiny-Q8_0.gguf": write_gguf(tmp_path / "q8.gguf")})  # fmt: skip
    yield m
    m.close()


@pytest.fixture()
def shell(tmp_path: Path, hub: HubMirror, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    for var in DISCOVERY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XGEN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # no server: the kernel pulls
    monkeypatch.setenv("XGEN_MODELS_DIR", str(tmp_path / "pulled"))  # no model dirs: pulls land here
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
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


def test_pull_magic_in_the_kernel(shell: InteractiveShell, hub: HubMirror, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    shell.run_line_magic("xgen", "pull acme/tiny-GGUF")
    out = capsys.readouterr().out
    assert "tiny-Q4_K_M.gguf [" in out and "100.0%" in out  # the text bar (no widgets outside a kernel)
    assert f"pulled acme/tiny-GGUF -> {tmp_path / 'pulled' / 'tiny-Q4_K_M.gguf'}" in out
    shell.run_line_magic("xgen", "models")
    assert "tiny-Q4_K_M" in capsys.readouterr().out
    shell.run_line_magic("xgen", "pull acme/tiny-GGUF:Q2_K")
    err = capsys.readouterr().err
    assert err.startswith("xgen: acme/tiny-GGUF: the quant Q2_K is not there") and "Traceback" not in err


@pytest.fixture()
def jupyter(tmp_path: Path, hub: HubMirror) -> Iterator[JupyterProc]:
    models = tmp_path / "server-models"
    j = JupyterProc(tmp_path, "puller", {"model_dirs": [str(models)], "shared_dir": str(tmp_path / "shared")},
                    env={"HF_ENDPOINT": hub.url})  # fmt: skip
    j.start()
    yield j
    j.stop()


def test_pull_through_the_jupyter_server(jupyter: JupyterProc, hub: HubMirror, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    client = RemoteClient(Connection(jupyter.base, jupyter.token, "the test"))
    hub.delay = 0.002
    result = run_pull(client, "acme/tiny-GGUF:q8_0", widgets=False)
    assert result["path"] == str(tmp_path / "server-models" / "tiny-Q8_0.gguf")
    out = capsys.readouterr().out
    assert "tiny-Q8_0.gguf [" in out and "pulled acme/tiny-GGUF" in out
    assert "tiny-Q8_0" in [m["name"] for m in client.models()]  # the server's catalog has it
    with pytest.raises(ModelError) as e:
        run_pull(client, "acme/nothing-here", widgets=False)
    assert "No model repo acme/nothing-here" in e.value.message
