"""The ``%xgen`` command line: argparse subcommands that raise instead of exiting the kernel."""

from __future__ import annotations

import argparse
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


HELP: tuple[tuple[str, str], ...] = (
    ("gpus", "GPUs, CPU and what each detector found (--refresh re-detects)"),
    ("models", "models you can load (includes 'default')"),
    ("plan MODEL [options]", "the launch plan and why each flag is there; starts nothing"),
    (
        "load MODEL [options]",
        "start a server (--name, --backend, --ctx, --gpu-layers, --parallel, --embedding, ...)",
    ),
    ("ls", "loaded servers with state, backend and endpoint"),
    ("logs NAME [--follow] [--tail N]", "a server's log (--follow: live, until it stops or you interrupt)"),
    ("unload NAME | --all", "stop a server (or all of them)"),
    ("client NAME [--var V]", "put an openai.OpenAI client for NAME in a variable (default: client)"),
    ("panel", "live panel: GPUs, servers, a load form, logs"),
    ("%%xgen chat NAME", "the cell is the prompt; the answer streams in"),
    ("help", "this list"),
)


def help_text() -> str:
    width = max(len(c) for c, _ in HELP)
    lines = ["%xgen commands:"] + [f"  {c:<{width}}  {t}" for c, t in HELP]
    lines.append("Any command with -h shows its options, e.g. `%xgen load -h`.")
    return "\n".join(lines)


def build_parser() -> Parser:
    p = Parser(prog="%xgen", add_help=False, description="Serve models from this notebook.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    g = sub.add_parser("gpus", help=HELP[0][1])
    g.add_argument("--refresh", action="store_true", help="detect again instead of using the cached report")
    g.add_argument("--json", action="store_true")
    sub.add_parser("models", help=HELP[1][1])
    pl = sub.add_parser("plan", help=HELP[2][1])
    add_request_args(pl)
    pl.add_argument("--json", action="store_true")
    ld = sub.add_parser("load", help=HELP[3][1])
    add_request_args(ld)
    ld.add_argument(
        "--no-wait", action="store_true", help="return at once; watch it with %%xgen ls or the panel"
    )
    ls = sub.add_parser("ls", help=HELP[4][1])
    ls.add_argument("--all", action="store_true", help="every user's servers on this box (owner, model, memory, state)")
    lg = sub.add_parser("logs", help=HELP[5][1])
    lg.add_argument("name")
    lg.add_argument("--follow", "-f", action="store_true")
    lg.add_argument("--tail", type=int, default=100, metavar="N")
    un = sub.add_parser("unload", help=HELP[6][1])
    un.add_argument("name", nargs="?")
    un.add_argument("--all", action="store_true")
    cl = sub.add_parser("client", help=HELP[7][1])
    cl.add_argument("name")
    cl.add_argument("--var", default="client", help="variable to put it in")
    sub.add_parser("panel", help=HELP[8][1])
    ch = sub.add_parser(
        "chat", help="chat with a server: the cell (or the rest of the line after --) is the prompt"
    )
    ch.add_argument("name")
    ch.add_argument("prompt", nargs="*", help="(line form) the prompt")
    ch.add_argument("--system", default=None)
    ch.add_argument("--max-tokens", type=int, default=256)
    ch.add_argument("--temperature", type=float, default=None)
    sub.add_parser("help", help=HELP[10][1])
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    if not argv:
        raise UsageError("no command given", "`%xgen help` lists the commands")
    ns = parser.parse_args(argv)
    if ns.command == "unload" and not (ns.name or ns.all):
        raise UsageError("%xgen unload needs a server NAME or --all", "`%xgen ls` lists the servers")
    return ns
