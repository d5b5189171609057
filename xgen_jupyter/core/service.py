"""XGenCore: the one object the CLI and the Jupyter extension hold.

It ties detection, model resolution, backend discovery and the pure planner together
(this is where the I/O lives, so the planner stays pure), and it owns the load path: name the
server (one claim per name), plan, admit (box registry), then hand the planned server and its
adapter to the supervisor (ProcessManager here, ClusterManager on Ray), which only starts,
watches and stops. Planning and admission hold no supervisor lock, so lookups (the proxy on the
IOLoop) never wait behind them.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .adapters.base import BackendAdapter
from .adapters.catalog import BackendInstall, discover_backends, make_adapter
from .adapters.registry import backend_ids
from .box import shares
from .box.admission import BoxAdmission
from .box.devices import adjusted
from .box.idle import Janitor
from .box.registry import BoxRegistry
from .box.usage_books import Ledger
from .config import CoreConfig
from .errors import ServerConflict, XGenError
from .hardware.chain import detect_hardware, sample_gpus
from .hardware.membw import host_bandwidth
from .hardware.types import HardwareReport
from .models.inspect import inspect_model
from .models.resolve import list_models, resolve_model
from .planning import calibration
from .planning.context import Occupant, PlanInputs
from .planning.margin import Margin
from .planning.plan import LaunchPlan
from .planning.planner import plan as make_plan
from .planning.recorder import CalibrationRecorder
from .planning.request import LoadRequest, parse_request
from .process.claims import Claims
from .process.logbuffer import LogBuffer
from .process.manager import ProcessManager, name_for
from .process.server import ACTIVE, ManagedServer
from .process.stats import engine_stats
from .process.supervisor import Supervisor

if TYPE_CHECKING:
    from .cluster.manager import ClusterManager

log = logging.getLogger("xgen")


class XGenCore:
    def __init__(
        self,
        config: CoreConfig | None = None,
        hardware: Callable[[bool], HardwareReport] | None = None,
    ) -> None:
        self.config = config or CoreConfig()
        self._hardware = hardware or (lambda refresh: detect_hardware(refresh=refresh))
        # Plans fit into the memory free now: on a shared box other processes come and go.
        self._sample_free = hardware is None
        self._backends: dict[str, BackendInstall] | None = None
        self._lock = threading.Lock()
        self._claims = Claims()
        self.manager: Supervisor
        if self.config.cluster:
            # Scale-out: engines run on Ray nodes, each node's agent with its own box registry (core/cluster).
            from .cluster.manager import ClusterManager  # imports Ray: only when a cluster is configured

            cluster = ClusterManager(self.resolve, type(self), self.config)
            self.manager = cluster
            if hardware is None:
                self._hardware = cluster.hardware
                self._sample_free = False
        else:
            self.manager = ProcessManager.from_config(self._replan, self.config)
        # The shared box: reserve memory box-wide before any engine starts (core/box).
        self.registry: BoxRegistry | None = None
        if self.config.shared_dir not in (None, "") and not self.config.cluster:  # "": off, as in c.XGen
            try:
                self.registry = BoxRegistry(Path(self.config.shared_dir), self.config.quotas, self.config.user)
            except XGenError as exc:  # a broken shared folder must not stop Jupyter; say so loudly
                log.warning("xgen: box registry disabled, loads are not coordinated with other users: %s", exc)
        self.admission: BoxAdmission | None = None
        self.janitor = Janitor(self.manager, None, self.config.idle_ttl, self.config.janitor_interval)
        if self.registry is not None:
            self.use_registry(self.registry)
        if not self.config.cluster:  # what each engine really took on its GPU, for the next plan
            self.manager.subscribe(CalibrationRecorder(self.config.state_dir, self.manager.find).on_event)
        # The usage books (in the registry when there is one) and the meter of our servers' memory.
        self.ledger = Ledger(self)
        self.manager.subscribe(self.ledger.meter.on_event)
        self.janitor.meter = self.ledger.meter
        self.janitor.start()

    def use_registry(self, registry: BoxRegistry) -> None:
        """Coordinate loads through ``registry``: admit each plan there, keep its entries in step."""
        self.registry = registry
        self.admission = BoxAdmission(registry, lambda: self.hardware(),
                                      Margin.of(self.config.gpu_margin_mib, self.config.gpu_margin))
        self.manager.subscribe(self.admission.on_event)
        self.janitor.registry = registry

    @property
    def cluster(self) -> ClusterManager | None:
        """The supervisor when it is the Ray one (its hardware, placement and nodes), else None."""
        return self.manager if self.config.cluster else None  # type: ignore[return-value]

    # -- facts ---------------------------------------------------------------------
    def hardware(self, refresh: bool = False) -> HardwareReport:
        return self._hardware(refresh)

    def backends(self, refresh: bool = False) -> dict[str, BackendInstall]:
        with self._lock:
            if self._backends is None or refresh:
                self._backends = discover_backends(self.config)
            return self._backends

    def models(self) -> list[dict[str, Any]]:
        return list_models(self.config.model_dirs)

    def resolve(self, spec: str) -> str:
        return resolve_model(spec, self.config.model_dirs)

    # -- planning ---------------------------------------------------------------------------
    def request(self, data: dict[str, Any] | LoadRequest) -> LoadRequest:
        return data if isinstance(data, LoadRequest) else parse_request(data, backend_ids())

    def plan(self, request: LoadRequest, name: str | None = None, exclude: frozenset[str] = frozenset()) -> LaunchPlan:
        cluster = self.cluster
        if cluster is not None:  # the node placement picks plans it, with the placement as a reason
            return cluster.plan(request, name)
        path = self.resolve(request.model)
        facts = inspect_model(path)
        occupied = tuple(
            Occupant(s.name, s.backend, s.request.server_type, s.plan.gpus)
            for s in self.manager.servers()
            if s.state in ACTIVE and s.name != name
        )
        hardware = self.hardware()
        if self._sample_free and hardware.gpus:
            hardware = replace(hardware, gpus=tuple(sample_gpus()))
        if self.registry is not None:  # fit into what other users' reservations leave free
            hardware = adjusted(hardware, self.registry.held(exclude=name or name_for(request)))
        inputs = PlanInputs(
            hardware=hardware,
            facts=facts,
            request=request,
            backends=self.backends(),
            name=name or name_for(request),
            exclude=exclude,
            occupied=occupied,
            default_n_ctx=self.config.default_n_ctx,
            gpu_margin=self.config.gpu_margin,
            gpu_margin_mib=self.config.gpu_margin_mib,
            # The cost model's host bandwidth and earlier loads' measured memory (issue 13).
            host_bandwidth=host_bandwidth(self.config.state_dir, hardware.cpu) if hardware.gpus else None,
            calibration=calibration.load(self.config.state_dir) if hardware.gpus else {},
            rocm_targets=tuple(self.config.rocm_targets),
        )
        return make_plan(inputs)

    def adapter(self, backend: str) -> BackendAdapter:
        inst = self.backends().get(backend)
        if inst is None:
            raise XGenError(f"unknown backend {backend!r}")
        return make_adapter(inst)

    # -- lifecycle: name, plan, admit (no supervisor lock), then the supervisor starts -----------
    def load(self, data: dict[str, Any] | LoadRequest) -> ManagedServer:
        """Plan (raising XGenError on bad input, nothing spawned), admit, and start in the background.

        A second load under a name that is loading or ready returns that same server.
        """
        request = self.request(data)
        name = name_for(request)
        with self._claims.hold(name):  # concurrent loads of one name: one plans, the others get its server
            old = self.manager.find(name)
            if old is not None and old.state in ACTIVE:
                if old.request.model != request.model or old.request.server_type != request.server_type:
                    raise ServerConflict(f"a server named {name!r} already serves {old.request.model}",
                                         "unload it first or pick another name")
                return old
            if old is not None and old.state == "stopping":  # nothing to plan for yet
                raise ServerConflict(f"a server named {name!r} is stopping", "wait until it has stopped")
            plan = self.plan(request, name)
            adapter = None if self.cluster is not None else self.adapter(plan.backend)  # a node makes its own
            server = self._new_server(name, request, plan, old)
            if self.admission is not None:  # refused: nothing started, nothing listed
                self.admission.admit(server)
            try:
                return self.manager.start(server, adapter)
            except BaseException:
                if self.admission is not None:
                    self.admission.release(name)
                raise

    def _new_server(self, name: str, request: LoadRequest, plan: LaunchPlan, old: ManagedServer | None) -> ManagedServer:
        cfg = self.config
        # An earlier run's log goes on (the history of this name); a new name gets a new file.
        logs = old.logs if old is not None else LogBuffer(Path(cfg.state_dir) / "logs" / f"{name}.log", cfg.log_lines,
                                                            cfg.log_file_bytes)
        server = ManagedServer(name, request, plan, logs, secrets.token_hex(24))  # hex: a key starting with "-" reads as a flag
        server.host = cfg.host
        server.restart_policy = request.restart or cfg.restart_policy
        server.max_restarts = request.max_restarts if request.max_restarts is not None else cfg.max_restarts
        return server

    def _replan(self, server: ManagedServer, exclude: frozenset[str]) -> tuple[LaunchPlan, BackendAdapter]:
        """The supervisor's one callback (fallback, on-crash restart): a new plan, its adapter, admitted."""
        plan = self.plan(server.request, server.name, exclude)
        adapter = self.adapter(plan.backend)
        if self.admission is not None:
            self.admission.admit(server, plan)
        return plan, adapter

    def unload(self, name: str) -> ManagedServer:
        return self.manager.unload(name)

    def engine_stats(self, name: str) -> dict[str, Any]:
        """Live /slots and /metrics of a ready llama-server ({} for engines without them)."""
        server = self.manager.get(name)
        try:
            adapter = self.adapter(server.backend)
        except XGenError:  # e.g. a server on another Ray node, with an engine not installed here
            return {}
        return engine_stats(server, adapter)

    def shutdown(self) -> None:
        self.janitor.stop()
        self.manager.shutdown()
        if self.registry is not None:
            try:
                self.registry.release_all()
            except XGenError as exc:
                log.warning("xgen: could not release box registry entries: %s", exc)

    # -- the shared box ------------------------------------------------------------------
    def box_servers(self) -> list[dict[str, Any]]:
        """Every user's servers on this box (owner, model, devices, memory, state), or ours alone."""
        if self.registry is not None:
            return self.registry.listing()
        return [
            {"owner": s.owner, "name": s.name, "model": s.request.model, "backend": s.backend, "state": s.state,
             "created_at": s.created_at, "devices": [], "gpu_bytes": (s.plan.memory.gpu_total if s.plan.memory else 0),
             "host_bytes": (s.plan.memory.host_total if s.plan.memory else 0), "shared_with": s.shared_with,
             "mine": True}
            for s in self.manager.servers() if s.state in ACTIVE
        ]

    def share(self, name: str, users: list[str], rotate: bool = False) -> ManagedServer:
        """Let the named users reach server ``name`` through their own Jupyter proxy ([] unshares);
        ``rotate``: first restart it under a new key (see :meth:`reload`)."""
        server = self.manager.get(name)
        if self.registry is None:
            raise XGenError("sharing needs the box registry", "set c.XGen.shared_dir")
        if rotate:
            server = self.reload(name, "restarted under a new key (sharing changed)")
        server.shared_with = shares.share(self.registry, name, server.api_key, users)
        return server

    def reload(self, name: str, reason: str) -> ManagedServer:
        """Stop ``name`` and load its request again: a new engine with a new key. A running engine's key
        cannot change, so this is how a key that users no longer allowed may have kept stops working."""
        old = self.manager.get(name)
        if old.state not in ACTIVE:
            raise ServerConflict(f"{name!r} is {old.state}", "load it again instead")
        self.manager.unload(name, reason)
        return self.load(old.request)

    def shared(self, owner: str, name: str) -> tuple[str, str]:
        """(endpoint, key) of a server ``owner`` shared with us."""
        if self.registry is None:
            raise XGenError("sharing needs the box registry", "set c.XGen.shared_dir")
        return shares.lookup(self.registry, owner, name)
