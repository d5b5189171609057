"""BoxService: one XGenCore per user of the box, all tied to one private registry.

Each user's servers live in their own core (own names, own ProcessManager, own idle janitor),
created on that user's first request. The registry is the service's own file (folder 0700,
file 0600): quotas and reservations can no longer be edited by users. Engines run under the
service's account and die with it (parent-death signal); when the service starts, entries of a
previous run are reclaimed and any engine it left is killed (pid + start time checked), so after
a restart the books balance: reservations = engines running.

With a Ray cluster configured (``--cluster``, the field ``CoreConfig.cluster``), each user's core
places its engines on the cluster's nodes and the users' cluster managers share one ledger
(boxd/cluster.py). Their node agents are Ray actors owned by this process: when it dies, Ray
ends them and their engines with them; on SIGTERM they are unloaded first.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

from ..core.box.registry import BoxRegistry
from ..core.config import CoreConfig
from ..core.errors import XGenError
from ..core.service import XGenCore
from .cluster import Placement

log = logging.getLogger("xgen.boxd")

#: The registry's owner name for the service's own housekeeping (never a server's owner).
SERVICE_USER = "xgen-box-service"


class BoxService:
    def __init__(self, config: CoreConfig, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.config = replace(config, shared_dir=None)  # the service is the registry
        self.registry_dir = self.state_dir / "registry"
        self._cores: dict[str, XGenCore] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.placement = Placement(lambda: self.cores().values())
        if self.config.cluster:  # join now: a wrong address stops the service at start, not every first request
            from ..core.cluster.nodes import connect

            connect(self.config.cluster)
        # Opening the registry reclaims what a previous run of the service left (its pid is dead).
        self.housekeeping = BoxRegistry(self.registry_dir, config.quotas, SERVICE_USER, private=True)

    def core(self, user: str) -> XGenCore:
        """The user's core, created on first use."""
        with self._lock:
            if self._closed:
                raise XGenError("the box service is shutting down", "retry in a moment")
            core = self._cores.get(user)
            if core is None:
                core = self._cores[user] = self._make(user)
            return core

    def cores(self) -> dict[str, XGenCore]:
        with self._lock:
            return dict(self._cores)

    def _make(self, user: str) -> XGenCore:
        cfg = replace(self.config, user=user, state_dir=self.state_dir / "users" / user)
        core = XGenCore(cfg)
        registry = BoxRegistry(self.registry_dir, self.config.quotas, user, private=True)
        if core.cluster is not None:  # engines on Ray nodes: one ledger and lock for all users (boxd/cluster.py)
            self.placement.join(core, registry)
        else:
            attach_registry(core, registry)
        log.info("xgen box: first request of %s", user)
        return core

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            cores = list(self._cores.values())
        threads = [threading.Thread(target=c.shutdown) for c in cores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def attach_registry(core: XGenCore, registry: BoxRegistry) -> None:
    """What XGenCore does with ``shared_dir`` set, with a private registry of the user's name."""
    core.use_registry(registry)
