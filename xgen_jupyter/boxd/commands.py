"""``xgen ls / load / unload / logs`` and the service's side of ``plan``, ``models`` and ``serve``.

Where the box service's trusted socket is found (``$XGEN_BOX_SOCKET``, else ``<shared dir>/box.sock``,
the same choice the Jupyter extension makes through :func:`.remote.core_for`), every command
goes through it, so the service's quotas, admission and read checks hold on the command line as
they do in Jupyter: the user is who the kernel says, whatever ``XGEN_USER`` claims. Without a
service, ``plan``, ``models`` and ``serve`` run the core in this process as before; ``ls``, ``load``,
``unload`` and ``logs`` need a service (an engine started by a CLI process would die with it).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from ..core.box.db import default_shared_dir
from ..core.config import CoreConfig
from ..core.errors import XGenError
from ..core.request_args import add_request_args, request_from_args
from .client import SOCKET_ENV, BoxClient, find_socket
from .remote import RemoteCore

SETTLED = ("ready", "failed", "crashed", "stopped")


def cli_core(model_dirs: list[str]) -> Any:
    """The box service's client when its trusted socket is there, else the core in this process."""
    sock = find_socket(default_shared_dir())
    if sock is not None:
        return RemoteCore(BoxClient(sock), CoreConfig(model_dirs=model_dirs))
    from ..core.service import XGenCore

    return XGenCore(CoreConfig(model_dirs=model_dirs))


def service(ns: argparse.Namespace) -> RemoteCore:
    sock = find_socket(default_shared_dir())
    if sock is None:
        raise XGenError(f"`xgen {ns.command}` needs the box service, and none answers here",
                        f"start it (`xgen box`, docs/shared-box.md) or point ${SOCKET_ENV} at its socket; "
                        "without it, `xgen serve MODEL` runs a model in the foreground")
    return RemoteCore(BoxClient(sock), CoreConfig(model_dirs=list(ns.model_dir or [])))


def _line(s: dict[str, Any]) -> str:
    shared = f"  shared with {', '.join(s['shared_with'])}" if s.get("shared_with") else ""
    where = s.get("endpoint") or (s.get("error") or {}).get("summary") or ""
    return f"{s['name']:<24} {s['state']:<9} {s['backend']:<20} {where}{shared}"


def cmd_ls(ns: argparse.Namespace) -> int:
    client = service(ns).client
    rows = client.call("box") if ns.box else client.call("servers")
    if ns.json:
        print(json.dumps(rows, indent=2))
    elif ns.box:
        for s in rows:
            print(f"{'*' if s['mine'] else ' '} {s['owner'] + '/' + s['name']:<32} {s['state']:<9} {s['backend']}")
    else:
        for s in rows:
            print(_line(s))
        if not rows:
            print("no servers (xgen load MODEL starts one)")
    return 0


def wait_settled(core: RemoteCore, name: str, stop: threading.Event | None = None) -> dict[str, Any]:
    """Poll the service until the server is ready or ended; print each new state."""
    last = None
    while True:
        s = core.client.call("get", name=name)
        if s["state"] != last:
            last = s["state"]
            print(f"{name}: {last}", file=sys.stderr, flush=True)
        if s["state"] in SETTLED or (stop is not None and stop.is_set()):
            return dict(s)
        time.sleep(0.5)


def _report(core: RemoteCore, s: dict[str, Any]) -> int:
    if s["state"] == "ready":
        key = core.client.call("route", model=s["name"])["api_key"]
        print(f"ready: {s['endpoint']}/v1  (model {s['name']!r}, API key {key})", flush=True)
        return 0
    err = s.get("error") or {}
    print(f"xgen: {s['name']} {s['state']}: {err.get('summary', '')}\n{err.get('log_tail', '')}", file=sys.stderr)
    return 1


def cmd_load(ns: argparse.Namespace) -> int:
    core = service(ns)
    s = core.client.call("load", request=core.request(request_from_args(ns)).to_dict())
    if ns.no_wait:
        print(json.dumps(s, indent=2) if ns.json else _line(s))
        return 0
    return _report(core, wait_settled(core, s["name"]))


def cmd_unload(ns: argparse.Namespace) -> int:
    s = service(ns).client.call("unload", name=ns.name)
    print(f"{s['name']}: {s['state']}")
    return 0


def cmd_logs(ns: argparse.Namespace) -> int:
    client = service(ns).client
    if not ns.follow:
        for ln in client.call("logs", name=ns.name, tail=ns.tail):
            print(ln["text"])
        return 0
    for msg in client.stream("follow_logs", name=ns.name, tail=ns.tail):
        if msg.get("kind") == "log":
            print(msg["line"]["text"], flush=True)
        elif msg.get("kind") == "error":
            raise XGenError(str(msg.get("message")))
    return 0


def serve(core: RemoteCore, ns: argparse.Namespace, stop: threading.Event) -> int:
    """``xgen serve`` through the service: load, wait, keep it until Ctrl-C, then unload."""
    s = core.client.call("load", request=core.request(request_from_args(ns)).to_dict())
    try:
        s = wait_settled(core, s["name"], stop)
        code = _report(core, s) if s["state"] in SETTLED else 130
        if code == 0:
            print("Ctrl-C stops it.", flush=True)
            while not stop.wait(1.0) and core.client.call("get", name=s["name"])["state"] == "ready":
                pass
        return code
    finally:
        core.client.call("unload", name=s["name"])


def add_parsers(sub: Any) -> None:
    ls = sub.add_parser("ls", help="your servers in the box service (--box: everyone's)")
    ls.add_argument("--box", action="store_true", help="every user's servers on this box (no keys, no paths)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_ls)
    ld = sub.add_parser("load", help="load a model in the box service; it runs until `xgen unload`")
    add_request_args(ld)
    ld.add_argument("--no-wait", action="store_true", help="return once admitted, before the model is ready")
    ld.add_argument("--json", action="store_true")
    ld.set_defaults(func=cmd_load)
    ul = sub.add_parser("unload", help="stop one of your servers in the box service")
    ul.add_argument("name")
    ul.set_defaults(func=cmd_unload)
    lg = sub.add_parser("logs", help="the log of one of your servers in the box service")
    lg.add_argument("name")
    lg.add_argument("--tail", type=int, default=100, help="the last N lines (default 100)")
    lg.add_argument("-f", "--follow", action="store_true", help="then each new line until Ctrl-C")
    lg.set_defaults(func=cmd_logs)
