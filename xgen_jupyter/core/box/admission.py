"""Glue between the core's supervisor and the box registry: reserve before an engine starts
(the core admits a plan, outside every supervisor lock), follow its state, release on stop /
failure / crash."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import XGenError
from ..hardware.types import HardwareReport
from ..planning.margin import Margin
from ..planning.plan import LaunchPlan
from ..process.events import Event
from ..process.server import ACTIVE, FINAL, ManagedServer
from ..units import gib
from . import shares
from .devices import Claim, claims_for
from .registry import BoxRegistry

log = logging.getLogger("xgen.box")


class BoxAdmission:
    def __init__(self, registry: BoxRegistry, measure: Callable[[], HardwareReport], margin: Margin | float) -> None:
        self.registry, self.measure, self.margin = registry, measure, margin
        self._claims: dict[str, tuple[str, str, list[Claim]]] = {}
        self._lock = threading.Lock()

    def admit(self, server: ManagedServer, plan: LaunchPlan | None = None) -> None:
        """Reserve what ``plan`` (default: ``server.plan``) needs, or raise XGenError saying why not.

        A server's later plan (a fallback, a restart) replaces its earlier reservation.
        """
        plan = plan or server.plan
        claims = claims_for(plan, self.measure(), self.margin)
        self.registry.reserve(server.name, server.request.model, plan.backend, claims)
        server.owner = self.registry.user
        with self._lock:
            self._claims[server.name] = (server.request.model, plan.backend, claims)
        if server.shared_with:
            shares.share(self.registry, server.name, server.api_key, server.shared_with)
        what = ", ".join(f"{c.label} {gib(c.bytes, 2)}" for c in claims if c.bytes) or "nothing"
        server.logs.append(f"[xgen] box registry: reserved {what} for {self.registry.user}/{server.name}")

    def release(self, name: str) -> None:
        """Drop ``name``'s reservation (admitted, then not started)."""
        with self._lock:
            self._claims.pop(name, None)
        try:
            self.registry.release(name)
        except XGenError as exc:
            log.warning("xgen: box registry release of %r failed: %s", name, exc)

    def on_event(self, event: Event) -> None:
        """Supervisor listener: keep the registry entry in step with the server's state."""
        if event.kind != "state":
            return
        state, name = event.data.get("state"), event.server
        try:
            if state in FINAL:
                self.registry.release(name)
            elif state in ACTIVE:
                ok = self.registry.update(name, str(state), event.data.get("pid"), event.data.get("endpoint"))
                if not ok:
                    self._restore(name, str(state), event.data)
        except XGenError as exc:  # the registry must never take an engine down
            log.warning("xgen: box registry update for %r failed: %s", name, exc)

    def _restore(self, name: str, state: str, data: dict[str, object]) -> None:
        """The registry file was recreated under a running server: put its entry back."""
        with self._lock:
            known = self._claims.get(name)
        if known is None:
            return
        model, backend, claims = known
        self.registry.reserve(name, model, backend, claims, force=True)
        pid = data.get("pid")
        self.registry.update(name, state, pid if isinstance(pid, int) else None, data.get("endpoint"))  # type: ignore[arg-type]
        log.warning("xgen: re-registered %r in the recreated box registry", name)
