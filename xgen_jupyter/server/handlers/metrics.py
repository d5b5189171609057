"""GET xgen/metrics: usage per user and model, queues and loads, in Prometheus text format.

Authenticated like every xgen route (a Jupyter token; Prometheus sends it as a bearer token).
Usage is the box's books (core/box/usage_books.py, every user's, kept across restarts), the same
``GET xgen/api/usage?scope=box`` reads; queues, loads and GPU bytes are this Jupyter server's servers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from jupyter_server.auth.decorator import authorized
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import web

from ..scheduling import scheduler
from .base import XGenHandler


class UsageCollector:
    def __init__(self, settings: dict[str, Any], servers: list[Any], rows: list[dict[str, Any]],
                 gpus: list[Any]) -> None:
        self.sched, self.servers, self.rows, self.gpus = scheduler(settings), servers, rows, gpus

    def collect(self) -> Iterator[Metric]:
        um = ["user", "model"]
        fams = {
            "requests": CounterMetricFamily("xgen_requests", "Requests through the proxy", labels=um),
            "prompt_tokens": CounterMetricFamily("xgen_prompt_tokens", "Prompt tokens (engine's count)", labels=um),
            "completion_tokens": CounterMetricFamily("xgen_completion_tokens", "Completion tokens (engine's count)",
                                                     labels=um),
            "gpu_byte_seconds": CounterMetricFamily("xgen_gpu_memory_byte_seconds",
                                                    "Planned GPU bytes held x seconds ready", labels=um),
            "host_byte_seconds": CounterMetricFamily("xgen_host_memory_byte_seconds",
                                                     "Planned host RAM bytes held x seconds ready", labels=um),
        }
        for row in self.rows:
            for key, fam in fams.items():
                fam.add_metric([row["user"], row["model"]], float(row.get(key) or 0))
        yield from fams.values()
        depth = GaugeMetricFamily("xgen_queue_depth", "Requests waiting for a server's slots", labels=["server"])
        busy = GaugeMetricFamily("xgen_requests_in_flight", "Requests holding a server's slots", labels=["server"])
        load = GaugeMetricFamily("xgen_load_seconds", "Seconds from load to ready, per ready server",
                                 labels=["server"])
        gpu = GaugeMetricFamily("xgen_server_gpu_bytes", "Planned GPU bytes per ready server and card",
                                labels=["server", "gpu"])
        for s in self.servers:
            snap = self.sched.snapshot(s.name) or getattr(s, "queue", None)  # the box service's, if any
            if snap is not None:
                depth.add_metric([s.name], float(snap["queued"]))
                busy.add_metric([s.name], float(snap["in_flight"]))
            if s.state == "ready" and s.ready_at:
                load.add_metric([s.name], s.ready_at - s.created_at)
                mem = s.plan.memory
                cards = list(s.plan.gpus)
                per = list(mem.per_gpu) if mem is not None and mem.per_gpu else [mem.gpu_total if mem else 0] * len(cards)
                for card, nbytes in zip(cards, per, strict=False):
                    gpu.add_metric([s.name, str(card)], float(nbytes))
        yield from (depth, busy, load, gpu)
        # Each card as measured now (NVML live; others as detected): what every process holds, xgen's or not.
        total = GaugeMetricFamily("xgen_gpu_memory_total_bytes", "GPU memory per card", labels=["gpu", "name"])
        used = GaugeMetricFamily("xgen_gpu_memory_used_bytes", "GPU memory in use per card (all processes)",
                                 labels=["gpu", "name"])
        for g in self.gpus:
            total.add_metric([str(g.index), g.name], float(g.memory_total))
            if g.memory_used is not None:
                used.add_metric([str(g.index), g.name], float(g.memory_used))
        yield from (total, used)


class MetricsHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        servers = await self.lookup(self.core.manager.servers)
        rows = await self.blocking(scheduler(self.settings).usage.rows, None)  # the box's books: sqlite or a socket
        gpus = await asyncio.to_thread(self.settings["xgen_gpu_sampler"])
        registry = CollectorRegistry(auto_describe=False)
        registry.register(UsageCollector(self.settings, servers, rows, gpus))
        t0 = time.monotonic()
        body = generate_latest(registry)
        self.log.debug("xgen: metrics rendered in %.1f ms", (time.monotonic() - t0) * 1000)
        self.finish(body, set_content_type=CONTENT_TYPE_LATEST)  # APIHandler would say JSON
