"""The ``%xgen`` command line: one table of commands, made into argparse subcommands that raise
instead of exiting the kernel, the help list and the magics' dispatch."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from ..core.request_args import add_request_args


class UsageError(Exception):
    """Bad ``%xgen`` arguments: shown as one line plus the usage, never a traceback."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message, self.usage = message, usage


class HelpShown(Exception):
    """``-h`` was given: the help is already printed."""


class Parser(argparse.ArgumentParser):
    def _hint(self) -> str:
        # One line: the full usage of `load` alone is ten lines long.
        return (
            f"`{self.prog} -h` shows the options"
            if self.prog != "%xgen"
            else "`%xgen help` lists the commands"
        )

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", self._hint())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError(f"{self.prog}: {(message or 'bad arguments').strip()}", self._hint())
        if message:
            print(message)
        raise HelpShown()


def _gpus(p: Parser) -> None:
    p.add_argument("--refresh", action="store_true", help="detect again instead of using the cached report")
    p.add_argument("--json", action="store_true")


def _plan(p: Parser) -> None:
    add_request_args(p)
    p.add_argument("--json", action="store_true")


def _load(p: Parser) -> None:
    add_request_args(p)
    p.add_argument("--no-wait", action="store_true", help="return at once; watch it with %%xgen ls or the panel")


def _ls(p: Parser) -> None:
    p.add_argument("--all", action="store_true", help="every user's servers on this box (owner, model, memory, state)")


def _logs(p: Parser) -> None:
    p.add_argument("name")
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--tail", type=int, default=100, metavar="N")


def _unload(p: Parser) -> None:
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true")


def _client(p: Parser) -> None:
    p.add_argument("name")
    p.add_argument("--var", default="client", help="variable to put it in")


def _pull(p: Parser) -> None:
    p.add_argument("spec", metavar="REPO[:QUANT or FILE]", help="e.g. unsloth/gemma-3-270m-it-GGUF (Q4_K_M by default)")


def _keys(p: Parser) -> None:
    p.add_argument("action", nargs="?", default="list", choices=["list", "create", "revoke"])
    p.add_argument("arg", nargs="?", metavar="NAME|ID", help="create: the key's name; revoke: its id")
    p.add_argument("--models", default=None, metavar="A,B", help="create: the servers it opens (default: all)")
    p.add_argument("--var", default=None, help="create: put the key in this variable instead of printing it")


def _usage(p: Parser) -> None:
    p.add_argument("--box", action="store_true", help="every user's rows, not only yours")
    p.add_argument("--json", action="store_true")


def _chat(p: Parser) -> None:
    p.add_argument("name")
    p.add_argument("prompt", nargs="*", help="(line form) the prompt")
    p.add_argument("--system", default=None)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=None)


@dataclass(frozen=True)
class Command:
    """One ``%xgen`` command: its line in ``%xgen help``, its options, and whether it takes a cell.
    The magics run it as ``XGenMagics.cmd_<name>``."""

    name: str
    usage: str
    help: str
    options: Callable[[Parser], None] | None = None
    cell: bool = False  # ``%%xgen NAME``: the cell body is its input


#: The one table the parser, ``%xgen help`` and the magics' dispatch are made from.
COMMANDS: tuple[Command, ...] = (
    Command("gpus", "gpus", "GPUs, CPU and what each detector found (--refresh re-detects)", _gpus),
    Command("models", "models", "models you can load (includes 'default')"),
    Command("pull", "pull REPO[:QUANT or FILE]",
            "download a GGUF (Q4_K_M unless named) or an HF folder from Hugging Face, with progress", _pull),
    Command("plan", "plan MODEL [options]", "the launch plan and why each flag is there; starts nothing", _plan),
    Command("load", "load MODEL [options]",
            "start a server (--name, --backend, --ctx, --gpu-layers, --parallel, --embedding, ...)", _load),
    Command("ls", "ls [--all]", "loaded servers with state, backend and endpoint", _ls),
    Command("logs", "logs NAME [--follow] [--tail N]",
            "a server's log (--follow: live, until it stops or you interrupt)", _logs),
    Command("unload", "unload NAME | --all", "stop a server (or all of them)", _unload),
    Command("client", "client NAME [--var V]",
            "put an openai.OpenAI client for NAME in a variable (default: client)", _client),
    Command("keys", "keys [create NAME [--models A,B] | revoke ID]",
            "API keys that open only the proxy (xgen/v1), e.g. for scripts outside the browser", _keys),
    Command("usage", "usage [--box] [--json]",
            "requests, tokens and memory-seconds per model, yours (--box: every user's), kept box-wide", _usage),
    Command("panel", "panel", "live panel: GPUs, servers, a load form, logs"),
    Command("chat", "%%xgen chat NAME", "the cell is the prompt; the answer streams in", _chat, cell=True),
    Command("help", "help", "this list"),
)  # fmt: skip
BY_NAME = {c.name: c for c in COMMANDS}


def help_text() -> str:
    width = max(len(c.usage) for c in COMMANDS)
    lines = ["%xgen commands:"] + [f"  {c.usage:<{width}}  {c.help}" for c in COMMANDS]
    lines.append("Any command with -h shows its options, e.g. `%xgen load -h`.")
    return "\n".join(lines)


def build_parser() -> Parser:
    p = Parser(prog="%xgen", add_help=False, description="Serve models from this notebook.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for c in COMMANDS:
        sp = sub.add_parser(c.name, help=c.help)
        if c.options:
            c.options(sp)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    if not argv:
        raise UsageError("no command given", "`%xgen help` lists the commands")
    ns = parser.parse_args(argv)
    if ns.command == "unload" and not (ns.name or ns.all):
        raise UsageError("%xgen unload needs a server NAME or --all", "`%xgen ls` lists the servers")
    if ns.command == "keys" and ns.action != "list" and not ns.arg:
        what = "a NAME (what uses it, e.g. ci)" if ns.action == "create" else "the key's ID (`%xgen keys` lists them)"
        raise UsageError(f"%xgen keys {ns.action} needs {what}", "`%xgen keys -h` shows the options")
    return ns
