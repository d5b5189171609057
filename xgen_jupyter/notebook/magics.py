"""``%xgen`` / ``%%xgen``: IPython magics over the xgen extension (or an in-process core)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
import time
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..core.api import FINAL
from ..core.errors import XGenError
from ..core.request_args import request_from_args
from . import render
from .client_api import XGenClient
from .commands import BY_NAME, COMMANDS, HelpShown, UsageError, help_text, parse
from .current import get_client
from .progress import LoadProgress

LOCAL_NOTICE = "no Jupyter server found: running engines in this kernel"


def say_error(message: str) -> None:
    """One friendly line on stderr: what went wrong and what to do."""
    print(f"xgen: {message}", file=sys.stderr, flush=True)


@magics_class
class XGenMagics(Magics):
    def __init__(self, shell: Any = None, client: XGenClient | None = None) -> None:
        super().__init__(shell)
        self._client = client
        self._told_local = False
        self.panels: list[Any] = []  # keep panels (and their event threads) alive with the magics

    @property
    def client(self) -> XGenClient:
        if self._client is None:
            self._client = get_client()
        if self._client.mode == "local" and not self._told_local:
            self._told_local = True
            print(LOCAL_NOTICE, flush=True)
        return self._client

    @line_cell_magic
    def xgen(self, line: str, cell: str | None = None) -> None:
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            say_error(f"cannot read the command line: {exc}")
            return
        try:
            ns = parse(argv)
            if cell is not None and not BY_NAME[ns.command].cell:
                takes = ", ".join(f"`%%xgen {c.name}`" for c in COMMANDS if c.cell)
                raise UsageError(f"%%xgen {ns.command} takes no cell", f"only {takes} uses the cell body")
            getattr(self, f"cmd_{ns.command}")(ns, cell)
        except HelpShown:
            pass
        except UsageError as exc:
            say_error(f"{exc.message} ({exc.usage})" if exc.usage else exc.message)
        except XGenError as exc:
            say_error(str(exc))
        except KeyboardInterrupt:
            say_error("interrupted")

    # -- commands --------------------------------------------------------------------
    def cmd_help(self, ns: argparse.Namespace, cell: str | None) -> None:
        print(help_text())

    def cmd_gpus(self, ns: argparse.Namespace, cell: str | None) -> None:
        report = self.client.hardware(refresh=ns.refresh)
        print(json.dumps(report, indent=2) if ns.json else render.hardware_text(report))

    def cmd_models(self, ns: argparse.Namespace, cell: str | None) -> None:
        print(render.models_text(self.client.models()))

    def cmd_pull(self, ns: argparse.Namespace, cell: str | None) -> None:
        from .pull import run_pull

        run_pull(self.client, ns.spec)

    def cmd_plan(self, ns: argparse.Namespace, cell: str | None) -> None:
        plan = self.client.plan(request_from_args(ns))
        print(json.dumps(plan, indent=2) if ns.json else render.plan_text(plan))

    def cmd_load(self, ns: argparse.Namespace, cell: str | None) -> None:
        client = self.client
        server = client.load(request_from_args(ns))
        name = server["name"]
        if ns.no_wait:
            print(
                f"{name!r}: {server['state']} on {server['backend']}; watch it with `%xgen ls` or `%xgen panel`"
            )
            return
        bar = LoadProgress()
        try:
            while server["state"] not in ("ready", *FINAL):
                bar.update(server)
                time.sleep(0.2)
                server = client.server(name)
        except KeyboardInterrupt:
            bar.close(server)
            say_error(
                f"stopped waiting; {name!r} is still {server['state']} (`%xgen ls`, `%xgen unload {name}`)"
            )
            return
        bar.close(server)
        if server["state"] == "ready":
            proxy = client.openai_target(name)[0] if client.mode == "remote" else None
            print(render.ready_text(server, proxy))
        else:
            err = server.get("error") or {}
            say_error(
                f"{name!r} {server['state']}: {err.get('summary') or 'see the log'} (`%xgen logs {name}`)"
            )

    def cmd_ls(self, ns: argparse.Namespace, cell: str | None) -> None:
        if ns.all:
            print(render.box_text(self.client.box_servers()))
            return
        print(render.servers_text(self.client.servers()))

    def cmd_logs(self, ns: argparse.Namespace, cell: str | None) -> None:
        if not ns.follow:
            lines = self.client.logs(ns.name, ns.tail)
            print("\n".join(ln["text"] for ln in lines) if lines else f"(no log lines for {ns.name!r} yet)")
            return
        stop = threading.Event()
        try:
            self.client.follow_logs(ns.name, lambda ln: print(ln["text"], flush=True), stop, ns.tail)
        except KeyboardInterrupt:
            pass  # following ends with the kernel's interrupt button, quietly
        finally:
            stop.set()

    def cmd_unload(self, ns: argparse.Namespace, cell: str | None) -> None:
        names = (
            [s["name"] for s in self.client.servers() if s["state"] not in FINAL]
            if ns.all
            else [ns.name]
        )
        if not names:
            print("no servers to unload")
        for name in names:
            server = self.client.unload(name)
            print(f"{name!r}: {server['state']}")

    def cmd_client(self, ns: argparse.Namespace, cell: str | None) -> None:
        from .openai_client import client as openai_client

        if not ns.var.isidentifier():
            raise UsageError(f"--var {ns.var!r} is not a Python name")
        api = openai_client(ns.name, self.client)
        assert self.shell is not None
        self.shell.user_ns[ns.var] = api
        print(f"{ns.var} = openai.OpenAI(base_url={str(api.base_url)!r}); use model={ns.name!r}")

    def cmd_keys(self, ns: argparse.Namespace, cell: str | None) -> None:
        from .keys import run_keys

        run_keys(self.client, ns, self.shell)

    def cmd_usage(self, ns: argparse.Namespace, cell: str | None) -> None:
        from .usage import run_usage

        run_usage(self.client, ns)

    def cmd_chat(self, ns: argparse.Namespace, cell: str | None) -> None:
        from .chat import stream_chat

        prompt = cell if cell is not None else " ".join(ns.prompt)
        stream_chat(self.client, ns.name, prompt, system=ns.system, max_tokens=ns.max_tokens,
                    temperature=ns.temperature)  # fmt: skip

    def cmd_panel(self, ns: argparse.Namespace, cell: str | None) -> None:
        from IPython.display import display

        from .panel import XGenPanel

        panel = XGenPanel(self.client)
        self.panels.append(panel)
        display(panel.widget)


def load_ipython_extension(ip: Any) -> None:
    ip.register_magics(XGenMagics(ip))
