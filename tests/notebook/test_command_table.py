"""The ``%xgen`` parser, its help and the magics' dispatch come from one table (commands.COMMANDS):
a command added to one and not the others fails here."""

from __future__ import annotations

import pytest

from xgen_jupyter.notebook.commands import COMMANDS, UsageError, build_parser, help_text, parse
from xgen_jupyter.notebook.magics import XGenMagics


def test_every_command_is_parsed_listed_and_dispatched() -> None:
    names = [c.name for c in COMMANDS]
    handlers = sorted(n.removeprefix("cmd_") for n in dir(XGenMagics) if n.startswith("cmd_"))
    assert sorted(names) == handlers
    parser_choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(parser_choices) == names
    text = help_text()
    for c in COMMANDS:
        assert f"  {c.usage}" in text and c.help in text


@pytest.mark.parametrize("argv", [["gpus"], ["models"], ["plan", "default"], ["ls", "--all"], ["logs", "x"],
                                  ["unload", "--all"], ["client", "x"], ["panel"], ["pull", "acme/tiny-GGUF"], ["chat", "x", "hi"], ["help"]])
def test_each_command_parses(argv: list[str]) -> None:
    assert parse(argv).command == argv[0]


def test_a_cell_only_where_the_table_allows_one(capsys: pytest.CaptureFixture[str]) -> None:
    magics = XGenMagics(shell=None, client=None)
    magics.xgen("ls", "a cell body")
    err = capsys.readouterr().err
    assert "%%xgen ls takes no cell" in err and "`%%xgen chat`" in err


def test_bad_arguments_raise_instead_of_exiting() -> None:
    with pytest.raises(UsageError, match="unload needs a server NAME"):
        parse(["unload"])
