"""``xgen box``: run the box service in the foreground (systemd, a JupyterHub managed service).

Exit on SIGTERM/SIGINT stops every engine first. A second service on the same socket is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from ..core.box.db import default_shared_dir
from ..core.config import CoreConfig
from ..core.errors import XGenError
from ..core.units import gib
from .client import SOCKET_ENV, SOCKET_NAME

log = logging.getLogger("xgen.boxd")


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/xgen-box")
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "xgen-box"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--socket", help=f"the socket (default: ${SOCKET_ENV}, else <shared dir>/{SOCKET_NAME})")
    p.add_argument("--shared-dir", help="the box's shared folder (default: $XGEN_SHARED_DIR, else /tmp/xgen-shared)")
    p.add_argument("--state-dir", help="the service's own folder: registry, logs (made 0700; default "
                   "/var/lib/xgen-box as root)")
    p.add_argument("--allow-user", action="append", help="a user allowed to connect (repeatable; default: all "
                   "local users)")
    p.add_argument("--quotas", help="a quotas JSON file (see docs/shared-box.md)")
    p.add_argument("--backend", action="append", help="allowed backend (repeatable; default: every installed one)")
    p.add_argument("--idle-ttl", type=float, default=0.0, help="unload servers unused this many seconds (0: never)")
    p.add_argument("--janitor-interval", type=float, default=5.0)
    p.add_argument("--ready-timeout", type=float, default=600.0)
    p.add_argument("--grace-period", type=float, default=5.0)
    p.add_argument("--max-clients", type=int, default=128, help="most connections at once")
    p.add_argument("--per-user", type=int, default=32, help="most connections of one user at once")
    p.add_argument("--cluster", help="a Ray cluster whose nodes run the engines (as c.XGen.cluster: ray://HEAD:10001, "
                   "HEAD:6379 or auto; docs/scale-out.md)")
    p.add_argument("--queue-limit", type=int, default=64, help="most requests waiting for one server's slots "
                   "(box-wide fair queue); more are answered 429 with Retry-After")
    p.add_argument("--evict-idle-others", type=float, default=None, metavar="SECONDS",
                   help="a load refused for memory may unload another user's server idle this long (default: only "
                   "the requester's own idle servers)")
    p.add_argument("--status", action="store_true", help="do not serve: ask the running service who you are "
                   "and list every user's servers on the box")


def socket_path(ns: argparse.Namespace) -> Path:
    if ns.socket:
        return Path(ns.socket)
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    return Path(ns.shared_dir or default_shared_dir()) / SOCKET_NAME


def _answering(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def config_from(ns: argparse.Namespace, model_dirs: list[str]) -> CoreConfig:
    quotas = {}
    if ns.quotas:
        try:
            quotas = json.loads(Path(ns.quotas).read_text())
        except (OSError, ValueError) as exc:
            raise XGenError(f"cannot read the quotas file {ns.quotas}: {exc}", "fix the JSON") from None
    return CoreConfig(model_dirs=model_dirs, allowed_backends=list(ns.backend or []), quotas=quotas,
                      idle_ttl=ns.idle_ttl, janitor_interval=ns.janitor_interval, ready_timeout=ns.ready_timeout,
                      grace_period=ns.grace_period, cluster=ns.cluster or None)


def status(path: Path) -> int:
    """``xgen box --status``: the box as its service sees it, asked as this Unix user."""
    from .client import BoxClient

    client = BoxClient(path, retry_for=2.0)
    hello = client.call("hello")
    print(f"box service at {hello['socket']} (pid {hello['pid']}); you are {hello['user']}")
    for s in client.call("box"):
        mine = "*" if s["mine"] else " "
        shared = f"  shared with {', '.join(s['shared_with'])}" if s["shared_with"] else ""
        nodes = [d["label"] for d in s["devices"] if d["label"].startswith("node ")]  # a Ray node's engine
        where = f"  on {', '.join(nodes)}" if nodes else ""
        print(f"{mine} {s['owner'] + '/' + s['name']:<32} {s['state']:<9} {s['backend']:<20} "
              f"gpu {gib(s['gpu_bytes'], 2):>10}  host {gib(s['host_bytes'], 2):>10}{where}{shared}")
    return 0


def run(ns: argparse.Namespace, model_dirs: list[str] | None = None) -> int:
    from .listener import Listener  # the core's imports: only when the service runs
    from .ops import Ops
    from .service import BoxService

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = socket_path(ns)
    if ns.status:
        return status(path)
    if path.exists() and _answering(path):
        raise XGenError(f"a box service already answers at {path}", "stop it first, or use another --socket")
    state_dir = Path(ns.state_dir) if ns.state_dir else default_state_dir()
    service = BoxService(config_from(ns, list(model_dirs or [])), state_dir)
    ops = Ops(service, path, queue_limit=ns.queue_limit, evict_others_after=ns.evict_idle_others)
    listener = Listener(path, ops, allowed=set(ns.allow_user) if ns.allow_user else None,
                        max_clients=ns.max_clients, per_user=ns.per_user)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    listener.start()
    log.info("xgen box service %d listening at %s (state in %s)", os.getpid(), path, state_dir)
    print(f"xgen box: listening at {path}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        listener.stop()
        service.shutdown()
        log.info("xgen box service stopped")
    return 0
