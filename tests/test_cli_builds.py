"""``xgen builds list|install``: the CLI verb of the build package (core/builds); ``xgen engines``
is kept as an alias for scripts written before the rename."""

from __future__ import annotations

import pytest

from xgen_jupyter import cli


@pytest.mark.parametrize("verb", ["builds", "engines"])
def test_builds_verb_and_its_alias_run_the_same_command(verb: str) -> None:
    ns = cli.build_parser().parse_args([verb, "install", "llama-server-cpu", "--force"])
    assert ns.func is cli.cmd_builds and ns.action == "install" and ns.backends == ["llama-server-cpu"] and ns.force


def test_builds_list_prints_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from xgen_jupyter.core.adapters.catalog import discover_backends
    from xgen_jupyter.core.config import CoreConfig

    assert cli.main(["builds", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(discover_backends(CoreConfig()))


def test_installing_an_unknown_backend_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["builds", "install", "llama-server-nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xgen: error:") and "llama-server-nope" in err and "Traceback" not in err


def test_messages_name_the_builds_verb() -> None:
    """Hints and help say `xgen builds install` (an engine is a server's process, not a build)."""
    from pathlib import Path

    root = Path(cli.__file__).parent
    stale = [str(p.relative_to(root)) for p in root.rglob("*.py") if "xgen engines install" in p.read_text()]
    assert stale == []
