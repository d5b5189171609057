"""The ``xgen`` command: detect, plan, serve and list models without Jupyter."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from .core.api import FINAL
from .core.config import CoreConfig
from .core.errors import XGenError
from .core.request_args import add_request_args, request_from_args
from .core.textreport import render_hardware, render_plan


def _core(ns: argparse.Namespace) -> Any:
    """The box service's client where its trusted socket is (its quotas hold here too), else the core."""
    from .boxd.commands import cli_core

    return cli_core(list(ns.model_dir or []))


def cmd_detect(ns: argparse.Namespace) -> int:
    from .core.hardware.chain import detect_hardware

    report = detect_hardware(refresh=True)
    print(json.dumps(report.to_dict(), indent=2) if ns.json else render_hardware(report))
    return 0


def cmd_models(ns: argparse.Namespace) -> int:
    models = _core(ns).models()
    if ns.json:
        print(json.dumps(models, indent=2))
    else:
        for m in models:
            print(f"{m['name']:<32} {m['format']:<5} {m.get('size') or 0:>14,}  {m['path']}")
    return 0


def cmd_plan(ns: argparse.Namespace) -> int:
    core = _core(ns)
    plan = core.plan(core.request(request_from_args(ns)))
    if not ns.json and not hasattr(plan, "reasons"):  # the box service's answer: its JSON shape
        from .core.api import plan_from_dict

        plan = plan_from_dict(plan.to_dict())
    print(json.dumps(plan.to_dict(), indent=2) if ns.json else render_plan(plan))
    return 0


def cmd_serve(ns: argparse.Namespace) -> int:
    core = _core(ns)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if hasattr(core, "client"):  # the box service runs it: load there, unload on Ctrl-C
        from .boxd.commands import serve

        return serve(core, ns, stop)
    try:
        server = core.load(request_from_args(ns))
        print(render_plan(server.plan), flush=True)
        unfollow = server.logs.subscribe(lambda ln: print(ln.text, file=sys.stderr, flush=True)) if ns.verbose else None
        while not stop.is_set() and server.state not in ("ready", *FINAL):
            stop.wait(0.1)
        if server.state == "ready":
            print(f"\nready: {server.endpoint}/v1  (model {server.name!r}, API key {server.api_key})", flush=True)
            print("Ctrl-C stops it.", flush=True)
            while not stop.is_set() and server.state == "ready":
                stop.wait(0.2)
        if unfollow:
            unfollow()
        if server.state in ("failed", "crashed"):
            err = server.error or {}
            print(f"xgen: {server.state}: {err.get('summary', '')}\n{err.get('log_tail', '')}", file=sys.stderr)
            return 1
        return 0
    finally:
        core.shutdown()


def cmd_box(ns: argparse.Namespace) -> int:
    from .boxd.main import run

    return run(ns, list(ns.model_dir or []))


def cmd_builds(ns: argparse.Namespace) -> int:
    if ns.action == "install":
        from .core.builds.install import install_engine

        for backend in ns.backends:
            path = install_engine(backend, force=ns.force, progress=_progress_printer(backend))
            print(f"\n{backend}: {path}")
        return 0
    from .core.adapters.catalog import discover_backends

    for b, inst in discover_backends(CoreConfig()).items():
        print(f"{b:<22} {'yes' if inst.available else 'no ':<4} {inst.executable or inst.reason}")
    return 0


def _progress_printer(label: str) -> Any:
    def show(message: str, fraction: float | None) -> None:
        bar = "" if fraction is None else f"[{'#' * int(fraction * 30):<30}] {fraction * 100:5.1f}% "
        sys.stderr.write(f"\r{label}: {bar}{message[:60]:<60}")
        sys.stderr.flush()

    return show


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xgen", description="Detect GPUs, plan and serve models.")
    p.add_argument("--model-dir", action="append", help="allowed model folder (repeatable)")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="show the GPUs, CPU and each detector's result")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_detect)
    m = sub.add_parser("models", help="list models in the model dirs")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    pl = sub.add_parser("plan", help="print the launch plan and its reasons; start nothing")
    add_request_args(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan)
    s = sub.add_parser("serve", help="serve a model in the foreground until Ctrl-C")
    add_request_args(s)
    s.add_argument("-v", "--verbose", action="store_true", help="stream the engine's log")
    s.set_defaults(func=cmd_serve)
    # "engines" is the verb this command had before the build package was renamed (kept for scripts).
    e = sub.add_parser("builds", aliases=["engines"], help="list backends or build llama-server ones")
    e.add_argument("action", choices=["list", "install"])
    e.add_argument("backends", nargs="*", default=["llama-server-cpu"])
    e.add_argument("--force", action="store_true")
    e.set_defaults(func=cmd_builds)
    from .pull_cli import add_parser as add_pull_parser

    add_pull_parser(sub)
    from .boxd.commands import add_parsers as add_box_client_parsers

    add_box_client_parsers(sub)  # ls, load, unload, logs: through the box service
    from .boxd.main import add_args as add_box_args  # light: the service's imports wait for cmd_box

    bx = sub.add_parser("box", help="run the box service: one per shared machine (docs/shared-box.md)")
    add_box_args(bx)
    bx.set_defaults(func=cmd_box)
    return p


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return int(ns.func(ns))
    except XGenError as exc:
        print(f"xgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
