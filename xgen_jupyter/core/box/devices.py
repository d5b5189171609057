"""What a plan reserves, per device, and the box's view of free memory once reservations count.

Every plan reserves what it says it will use: ``gpu_total`` on its GPU(s) and ``host_total`` in
host RAM (CPU engines too: on a shared box RAM is the other thing engines run out of).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..hardware.types import GPUInfo, HardwareReport
from ..planning.margin import Margin
from ..planning.plan import LaunchPlan
from ..units import MiB

HOST = "host"
MIN_MARGIN = 512 * MiB


@dataclass(frozen=True)
class Claim:
    """One device's part of a reservation, with the device's state measured when it was planned."""

    device: str
    label: str
    kind: str  # gpu | host
    bytes: int
    total: int
    used: int  # total - free, as measured (memory of engines already running counts here too)
    margin: int


def gpu_key(g: GPUInfo) -> str:
    """Stable across users' servers: the UUID or PCI id when known, else the index."""
    return f"gpu:{g.uuid or g.pci_bus_id or g.index}"


#: Host RAM kept free: a share of the RAM (the OS and page cache need room), at least MIN_MARGIN.
HOST_MARGIN = 0.05


def margin_of(total: int, fraction: float) -> int:
    return max(MIN_MARGIN, int(total * fraction))


def claims_for(plan: LaunchPlan, report: HardwareReport, margin: Margin | float) -> list[Claim]:
    """Per device, what ``plan`` reserves; a GPU's margin is the planner's own (margin.py: a fixed
    part plus a share of the plan's bytes on that card), so admission and planning agree."""
    if not isinstance(margin, Margin):
        margin = Margin.of(None, margin)
    out: list[Claim] = []
    mem = plan.memory
    if mem is None:  # vLLM: it takes gpu_memory_utilization of each GPU it is given
        util = plan.settings.gpu_memory_utilization or 0.0
        gpus = [g for g in report.gpus if g.index in plan.gpus]
        for g in gpus:
            out.append(_gpu_claim(g, int(g.memory_total * util), margin))
        return out
    gpus = [g for g in report.gpus if g.index in plan.gpus]
    if gpus and mem.gpu_total > 0:
        # A split plan says what each card takes; otherwise the one card takes it all.
        per = dict(zip(plan.gpus, mem.per_gpu, strict=True)) if mem.per_gpu else {}
        out += [_gpu_claim(g, per.get(g.index, mem.gpu_total // len(gpus)), margin) for g in gpus]
    cpu = report.cpu
    if mem.host_total > 0 and cpu.memory_total > 0:
        used = max(0, cpu.memory_total - cpu.memory_available)
        out.append(Claim(HOST, "host RAM", "host", mem.host_total, cpu.memory_total, used,
                         margin_of(cpu.memory_total, HOST_MARGIN)))
    return out


def _gpu_claim(g: GPUInfo, nbytes: int, margin: Margin) -> Claim:
    free = g.memory_free if g.memory_free is not None else g.memory_total
    return Claim(gpu_key(g), f"GPU {g.index} ({g.name})", "gpu", nbytes, g.memory_total,
                 max(0, g.memory_total - free), margin.for_bytes(nbytes))


def committed(held: int, held_ready: int, used: int) -> int:
    """Bytes taken on a device: every reservation, plus what is used outside them.

    Engines that are ready have allocated their memory, so it shows in ``used`` already;
    engines still loading may not have, so their reservations count in full.
    """
    return held + max(0, used - held_ready)


def adjusted(report: HardwareReport, held: dict[str, tuple[int, int]]) -> HardwareReport:
    """The report as the planner should see it: free memory net of everyone's reservations."""
    if not held:
        return report
    gpus = []
    for g in report.gpus:
        h, hr = held.get(gpu_key(g), (0, 0))
        free = g.memory_free if g.memory_free is not None else g.memory_total
        taken = committed(h, hr, g.memory_total - free)
        gpus.append(replace(g, memory_free=max(0, g.memory_total - taken)))
    cpu = report.cpu
    h, hr = held.get(HOST, (0, 0))
    taken = committed(h, hr, max(0, cpu.memory_total - cpu.memory_available))
    cpu = replace(cpu, memory_available=max(0, cpu.memory_total - taken))
    return replace(report, gpus=tuple(gpus), cpu=cpu)
