"""``%xgen keys`` against a real Jupyter server process: create (shown once, or into a variable),
list with usage, revoke; the key opens that server's proxy only, and is in neither its log nor ``ps``."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from tests.core.box.jupyter_proc import JupyterProc
from tests.notebook.conftest import jupyter_of
from xgen_jupyter.notebook.commands import UsageError, parse
from xgen_jupyter.notebook.connection import Connection
from xgen_jupyter.notebook.local_client import LocalClient
from xgen_jupyter.notebook.magics import XGenMagics
from xgen_jupyter.notebook.remote_client import RemoteClient

KEY = re.compile(r"xgen-[0-9a-f]{12}-[A-Za-z0-9_-]{43}")


class Line:
    """``magics.xgen("keys ...")`` runs ``%xgen keys ...`` in the shell, as a notebook cell does."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    def xgen(self, line: str) -> None:
        self.shell.run_line_magic("xgen", line)


@pytest.fixture()
def jupyter(tmp_path: Path) -> Iterator[JupyterProc]:
    yield from jupyter_of(tmp_path, "keyholder")


def test_keys_magic_through_the_jupyter_server(jupyter: JupyterProc, shell: InteractiveShell,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    shell.register_magics(XGenMagics(shell, client=RemoteClient(Connection(jupyter.base, jupyter.token, "the test"))))
    magics = Line(shell)
    magics.xgen("keys")
    assert "no API keys" in capsys.readouterr().out
    magics.xgen("keys create laptop --models chat,embed")
    out = capsys.readouterr().out
    (key,) = KEY.findall(out)
    assert "shown this once" in out and "chat, embed" in out and f"{jupyter.base}/xgen/v1" in out
    magics.xgen("keys create ci --var CI_KEY")
    out = capsys.readouterr().out
    ci_key = shell.user_ns.pop("CI_KEY")
    assert KEY.fullmatch(ci_key) and ci_key not in out and not KEY.findall(out) and "'CI_KEY'" in out

    proxy = httpx.get(f"{jupyter.base}/xgen/v1/models", headers={"Authorization": f"Bearer {ci_key}"})
    # Nothing loaded: only catalog names, each loaded on first request (issue 15).
    assert proxy.status_code == 200 and [m["id"] for m in proxy.json()["data"] if m["loaded"]] == []
    rest = httpx.get(f"{jupyter.base}/xgen/api/servers", headers={"Authorization": f"Bearer {ci_key}"})
    kernels = httpx.post(f"{jupyter.base}/api/kernels", headers={"Authorization": f"Bearer {ci_key}"}, json={})
    assert (rest.status_code, kernels.status_code) == (403, 403)

    magics.xgen("keys list")
    listing = capsys.readouterr().out
    assert "laptop" in listing and "chat,embed" in listing and key not in listing and ci_key not in listing
    ci_id = ci_key.split("-")[1]
    (ci_row,) = [line for line in listing.splitlines() if line.startswith(ci_id)]
    assert ci_row.split()[2:4] == ["all", "1"]  # every model; one request counted
    magics.xgen(f"keys revoke {ci_id}")
    assert "revoked API key 'ci'" in capsys.readouterr().out
    proxy = httpx.get(f"{jupyter.base}/xgen/v1/models", headers={"Authorization": f"Bearer {ci_key}"})
    assert proxy.status_code == 401
    magics.xgen(f"keys revoke {ci_id}")
    err = capsys.readouterr().err
    assert err.startswith("xgen: keyholder has no API key") and "Traceback" not in err
    magics.xgen("keys create")
    assert "needs a NAME" in capsys.readouterr().err
    magics.xgen("keys create x --var 1bad")
    assert "not a variable name" in capsys.readouterr().err

    # in neither the server's log (a real process, its stdout and stderr) nor any command line
    log = jupyter.log_text()
    assert "xgen/v1/models" in log or "/api/kernels" in log
    ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    for k in (key, ci_key):
        secret = k.split("-", 2)[2]
        assert secret not in log and secret not in ps


def test_keys_need_a_jupyter_server(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.register_magics(XGenMagics(shell, client=LocalClient.__new__(LocalClient)))  # no core is started
    magics = Line(shell)
    magics.xgen("keys")
    err = capsys.readouterr().err
    assert "API keys open the proxy of a Jupyter server" in err and "Traceback" not in err


def test_keys_arguments() -> None:
    assert parse(["keys"]).action == "list"
    assert parse(["keys", "create", "ci", "--models", "a,b"]).models == "a,b"
    with pytest.raises(UsageError, match="needs the key's ID"):
        parse(["keys", "revoke"])
    with pytest.raises(UsageError):
        parse(["keys", "rotate", "x"])
