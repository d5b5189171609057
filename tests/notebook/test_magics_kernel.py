"""The %xgen magics in a real kernel started by a real Jupyter server with the extension."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import JupyterServer
from .kernel_ws import Execution, KernelSession

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def kernel(jupyter_server: JupyterServer) -> Iterator[KernelSession]:
    k = KernelSession(jupyter_server.url, jupyter_server.token)
    try:
        r = k.execute("%load_ext xgen_jupyter")
        assert r.status == "ok" and not r.errors, r.text
        yield k
    finally:
        k.close()


def one_error_line(r: Execution) -> str:
    """A user mistake: the cell succeeds, nothing on stdout, one 'xgen: ...' line on stderr."""
    assert r.status == "ok" and not r.errors, (r.errors, r.text)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("xgen: "), r.stderr
    assert "Traceback" not in r.text
    return lines[0]


def test_kernel_finds_its_own_server_by_parent_pid(
    kernel: KernelSession, jupyter_server: JupyterServer
) -> None:
    r = kernel.execute(
        "import os\n"
        "from xgen_jupyter.notebook.connection import discover\n"
        "c = discover()\n"
        "print(c.source, c.url, os.getppid())"
    )
    assert r.status == "ok", r.text
    assert r.stdout.startswith(f"parent pid {jupyter_server.pid} {jupyter_server.url} "), r.stdout
    assert int(r.stdout.split()[-1]) == jupyter_server.pid  # the kernel really is the server's child


def test_load_chat_logs_unload(kernel: KernelSession, jupyter_server: JupyterServer) -> None:
    r = kernel.execute("%xgen load default --name t")
    assert r.status == "ok" and not r.errors and not r.stderr, r.text
    assert "ready: 't'" in r.stdout and "Why:" in r.stdout, r.stdout
    assert f"{jupyter_server.url}xgen/v1" in r.stdout  # the proxy, reachable with the Jupyter token
    # the progress bar was a widget (this is a notebook kernel)
    assert any("application/vnd.jupyter.widget-view+json" in d["data"] for d in r.displays), r.displays

    r = kernel.execute("%xgen ls")
    assert "t " in r.stdout and "ready" in r.stdout, r.text

    r = kernel.execute("%%xgen chat t --max-tokens 32\nName three colours.")
    assert r.status == "ok" and not r.errors and not r.stderr, r.text
    assert r.stdout.strip(), "the chat answer is empty"
    # streamed: the answer arrived as several stream messages, spread over time
    pieces = [c for c in r.stdout_chunks if c[1].strip()]
    assert len(pieces) >= 3, r.stdout_chunks
    assert pieces[-1][0] - pieces[0][0] > 0.05, "all tokens arrived at once"

    r = kernel.execute("%xgen logs t --tail 20")
    assert r.status == "ok" and not r.stderr, r.text
    assert "[xgen] attempt 1" in r.stdout or len(r.stdout.splitlines()) >= 3, r.stdout

    r = kernel.execute("%xgen client t --var c\nprint([m.id for m in c.models.list().data])")
    assert "'t'" in r.stdout.splitlines()[-1], r.text

    r = kernel.execute("%xgen unload t")
    assert r.status == "ok" and "'t': stopped" in r.stdout, r.text


def test_logs_follow_ends_when_the_server_stops(kernel: KernelSession) -> None:
    r = kernel.execute("%xgen load default --name f")
    assert "ready: 'f'" in r.stdout, r.text
    r = kernel.execute(
        "import threading\n"
        "from xgen_jupyter.notebook.current import get_client\n"
        "threading.Timer(3.0, lambda: get_client().unload('f')).start()\n"
        "get_ipython().run_line_magic('xgen', 'logs f --follow --tail 3')\n"
        "print('FOLLOW ENDED', get_client().server('f')['state'])",
        timeout=60,
    )
    assert r.status == "ok" and not r.stderr, r.text
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "FOLLOW ENDED stopped", lines[-5:]
    assert len(lines) >= 4  # the 3 history lines, then live ones (the stop), then the end
    assert any("[xgen]" in ln or "stop" in ln.lower() or "shutdown" in ln.lower() for ln in lines[3:-1]), (
        lines
    )


def test_missing_model_is_one_line(kernel: KernelSession) -> None:
    line = one_error_line(kernel.execute("%xgen load /no/such/model.gguf --name nope"))
    assert "model.gguf" in line and "not" in line.lower(), line


def test_unknown_server_is_one_line(kernel: KernelSession) -> None:
    for cell in ("%xgen logs ghost", "%xgen unload ghost", "%%xgen chat ghost\nhello"):
        line = one_error_line(kernel.execute(cell))
        assert "ghost" in line, (cell, line)


@pytest.mark.parametrize(
    "cell, words",
    [
        ("%xgen load", "required: model"),
        ("%xgen frobnicate", "invalid choice"),
        ("%xgen", "no command"),
        ("%xgen load default --ctx lots", "n_ctx"),
        ("%xgen unload", "NAME or --all"),
        ("%%xgen ls\nbody", "takes no cell"),
    ],
)
def test_usage_errors_are_one_line(kernel: KernelSession, cell: str, words: str) -> None:
    line = one_error_line(kernel.execute(cell))
    assert words in line, line
