"""The Jupyter server extension: ``c.XGen.*`` settings → XGenCore, handlers, engine cleanup."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, List, Unicode, default

from ..boxd.remote import core_for, where
from ..core.box.db import default_shared_dir
from ..core.config import CoreConfig, default_engines_dir, default_state_dir
from ..core.errors import XGenError
from ..core.hardware.chain import sample_gpus
from ..core.service import XGenCore
from . import aichat
from .routes import handlers
from .upstream import EngineClient

#: Traits of the Jupyter side alone (the proxy, the events websocket, start-up): not CoreConfig fields.
SERVER_ONLY = frozenset({"gpu_sample_interval", "proxy_timeout", "preload", "proxy_max_connections", "ai_chat",
                         "ai_chat_params", "ai_chat_refresh"})


class XGen(ExtensionApp):
    """Serve models from this Jupyter server. Configure with ``c.XGen.<trait>`` (the class name)."""

    name = "xgen"

    model_dirs = List(Unicode(), help="Folders models may be loaded from (plus the bundled 'default' model). "
                      "Paths outside them are refused. Empty: any path the server can read.").tag(config=True)
    allowed_backends = List(Unicode(), help="Backends the planner may choose (e.g. ['llama-server-vulkan', "
                            "'llama-server-cpu']). Empty: every installed one.").tag(config=True)
    binaries = Dict(key_trait=Unicode(), value_trait=Unicode(),
                    help="Explicit engine binaries by backend id, e.g. "
                    "{'llama-server-rocm': '/opt/llama/bin/llama-server'}.").tag(config=True)
    vllm_python = Unicode(None, allow_none=True,
                          help="Python interpreter that has vLLM installed (its own venv). "
                          "Default: the server's own Python.").tag(config=True)
    rocm_targets = List(Unicode(), help="gfx targets the ROCm llama-server build was compiled for "
                        "(e.g. ['gfx1100', 'gfx1151']); a GPU outside them skips ROCm. "
                        "Empty: assume the build matches.").tag(config=True)
    engines_dir = Unicode(help="Where `xgen builds install` puts engine builds.").tag(config=True)
    state_dir = Unicode(help="Where engine logs and server state are written.").tag(config=True)
    shared_dir = Unicode(None, allow_none=True,
                         help="Shared folder of the box-wide registry (GPU/RAM reservations, quotas, shares) used "
                         "by every user's Jupyter server on this box. Default: $XGEN_SHARED_DIR, else "
                         "/tmp/xgen-shared (created mode 1777). '' turns the registry off. See "
                         "docs/shared-box.md.").tag(config=True)
    quotas = Dict(help="Per-user quotas, merged under <shared_dir>/quotas.json: {'default': {'max_servers': 4, "
                  "'gpu_bytes': '40GiB'}, 'users': {'alice': {'host_bytes': '64GiB'}}}.").tag(config=True)
    restart_policy = Unicode("never", help="Default restart policy of a server whose engine crashes after it "
                             "was ready: 'never' or 'on-crash' (a load's 'restart' wins).").tag(config=True)
    max_restarts = Int(3, help="Most restarts of one server under the on-crash policy.").tag(config=True)
    restart_backoff_cap = Float(30.0, help="Longest wait in seconds before a restart (1 s, doubling).").tag(
        config=True)
    janitor_interval = Float(5.0, help="Seconds between idle-unload checks and reclaiming registry entries of "
                             "dead Jupyter servers.").tag(config=True)
    presets = Dict(help="Named presets, loadable by name on first request through xgen/v1: {'chat': {'model': "
                   "'default', 'n_ctx': 8192, 'n_parallel': 2}}. <shared_dir>/presets.json adds to them (and wins "
                   "on a clash).").tag(config=True)
    queue_limit = Int(64, help="Most requests waiting for one server's slots in the proxy's fair queue; more "
                      "are answered 429 with Retry-After.").tag(config=True)
    default_n_ctx = Int(4096, help="Context length when the request gives none (shrunk to fit memory).").tag(
        config=True)
    idle_ttl = Float(0.0, help="Unload a ready server after this many seconds without a request through "
                     "the proxy. 0: never.").tag(config=True)
    log_lines = Int(5000, help="Log lines kept in memory per server (the history a log websocket "
                    "replays).").tag(config=True)
    log_file_bytes = Int(20 * 1024 * 1024, help="Per-server log file size in bytes before it is rotated "
                         "(one previous file kept).").tag(config=True)
    host = Unicode("127.0.0.1", help="Address engines bind to. Keep 127.0.0.1 on a shared box: the "
                   "authenticated proxy is how everyone else reaches them.").tag(config=True)
    ready_timeout = Float(600.0, help="Seconds an engine may take to become ready before the attempt "
                          "counts as failed.").tag(config=True)
    grace_period = Float(5.0, help="Seconds between SIGTERM and SIGKILL when an engine is stopped.").tag(
        config=True)
    gpu_margin = Float(0.01, help="GPU memory kept free beside a plan, as a fraction of the plan's "
                       "bytes (added to gpu_margin_mib); sized by the memory estimate's measured "
                       "error (-0.72% .. -0.02% of NVML on an H200).").tag(config=True)
    gpu_margin_mib = Float(64.0, help="GPU memory (MiB) kept free beside every plan, besides "
                           "gpu_margin x its bytes; the same in the planner, the box registry and "
                           "Ray placement.").tag(config=True)
    gpu_sample_interval = Float(2.0, help="Default seconds between GPU samples on the events websocket "
                                "(clients may choose; 0 = off).").tag(config=True)
    proxy_timeout = Float(600.0, help="Seconds the proxy waits for the next bytes from an engine before "
                          "giving up on a response.").tag(config=True)
    cluster = Unicode(None, allow_none=True, help="Ray cluster whose nodes run the engines: 'ray://HEAD:10001' "
                      "(Ray Client), 'HEAD:6379' or 'auto' (this machine is a Ray node). Each load goes to the "
                      "node whose GPU fits it with the most headroom; the proxy and panels work as on one box. "
                      "None: engines run on this box. See docs/scale-out.md.").tag(config=True)
    preload = List(Unicode(), help="Models to load when the server starts, e.g. ['default'] (each "
                   "named after its file; loading goes on in the background).").tag(config=True)
    proxy_max_connections = Int(512, help="Most open connections from the proxy to all engines.").tag(
        config=True)
    ai_chat = Bool(True, help="When Jupyter AI (Jupyternaut) runs in this server, offer xgen's models in its "
                   "chat with an API key scoped to xgen/v1 (docs/jupyter-ai.md).").tag(config=True)
    ai_chat_params = Dict(help="Extra LiteLLM parameters of every xgen model offered to Jupyter AI, e.g. "
                          "{'max_tokens': 512}.").tag(config=True)
    ai_chat_refresh = Float(30.0, help="Seconds between checks of the proxy's model list for Jupyter AI "
                            "(new names show in new chats). 0: only at start.").tag(config=True)

    @default("engines_dir")
    def _engines_dir(self) -> str:
        return str(default_engines_dir())

    @default("state_dir")
    def _state_dir(self) -> str:
        return str(default_state_dir())

    core: XGenCore
    http: EngineClient
    _ai_follow: asyncio.Task[None] | None = None

    def core_config(self) -> CoreConfig:
        """The core's settings: every trait named like a CoreConfig field (see SERVER_ONLY for the rest)."""
        values = {name: getattr(self, name) for name in CoreConfig.names() if self.has_trait(name)}
        # The trait's None means the default folder; '' turns the registry off (CoreConfig's None).
        shared = values["shared_dir"]
        values["shared_dir"] = None if shared == "" else (shared or default_shared_dir())
        return CoreConfig.from_dict(values)

    def initialize_settings(self) -> None:
        # The box service's client when its socket is in the shared folder, else the core in-process.
        self.core = core_for(self.core_config())
        # One pooled client for every engine (upstream.py).
        self.http = EngineClient(self.proxy_timeout, self.proxy_max_connections)
        settings: dict[str, Any] = {
            "xgen_core": self.core,
            "xgen_http": self.http,
            "xgen_gpu_sampler": sample_gpus if self.core.cluster is None else lambda: list(self.core.hardware().gpus),
            "xgen_gpu_sample_interval": self.gpu_sample_interval,
            "xgen_shared_dir": self.shared_dir,
        }
        self.settings.update(settings)
        # Idle unload lives in the core's janitor; the proxy touches ManagedServer.last_used.
        for spec in self.preload:
            self._preload(spec)

    def _preload(self, spec: str) -> None:
        """Start loading ``spec`` now; a bad one is logged, and Jupyter starts anyway."""
        try:
            server = self.core.load({"model": spec})
        except XGenError as exc:
            self.log.error("xgen: could not preload %r: %s", spec, exc)
            return
        self.log.info("xgen: preloading %r as server %r (%s)", spec, server.name, server.backend)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # After every extension loaded and the port is bound: Jupyternaut's config and the URL are final.
        if self.ai_chat:
            chat = aichat.AIChat(serverapp, self.ai_chat_params)
            if await chat.start() is not None and self.ai_chat_refresh > 0:
                self._ai_follow = asyncio.create_task(chat.follow(self.ai_chat_refresh))

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def stop_extension(self) -> None:
        """Jupyter is shutting down: no engine may outlive it."""
        if isinstance(self.core, XGenCore):
            self.log.info("xgen: stopping %d engine(s)", len(self.core.manager.servers()))
        else:  # no call to the service (it may be down): its engines outlive this Jupyter server
            self.log.info("xgen: models run in the %s: they keep running", where(self.core))
        if self._ai_follow is not None:
            self._ai_follow.cancel()
        await asyncio.to_thread(self.core.shutdown)
        await self.http.close()


XGenApp = XGen  # the name the design notes use
