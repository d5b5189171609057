"""AMD GPUs through AMD SMI: the ``amdsmi`` Python library, else the ``amd-smi`` CLI's JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from .base import ToolUnavailable, guarded, optional_import, run_tool
from .classify import amd_family, amd_integrated, normalize_gfx
from .types import DetectorResult, GPUInfo

_UNITS = {"b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2, "gb": 1024**3, "gib": 1024**3}


def to_bytes(v: Any, default_unit: str = "MB") -> int | None:
    """amd-smi sizes: ``{"value": 32768, "unit": "MB"}``, ``"24560 MB"``, or a bare number.

    amd-smi's "MB" is MiB (it divides by 1024*1024), so both map to 2**20.
    """
    if isinstance(v, dict):
        return to_bytes(v.get("value"), str(v.get("unit") or default_unit))
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return int(v * _UNITS.get(default_unit.lower(), 1))
    m = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", str(v))
    if not m:
        return None  # "N/A"
    return to_bytes(float(m.group(1)), m.group(2) or default_unit)


def _na(v: Any) -> str | None:
    return None if v in (None, "", "N/A") else str(v)


def _gpu_list(doc: Any) -> list[dict[str, Any]]:
    # amd-smi ≤ ROCm 6.3 prints a bare list; newer versions wrap it in {"gpu_data": [...]}.
    if isinstance(doc, dict):
        doc = doc.get("gpu_data", [doc])
    return [d for d in doc if isinstance(d, dict)] if isinstance(doc, list) else []


def _gtt_and_free(metric: dict[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    """(vram free, gtt total, gtt free) from ``amd-smi metric --json``'s mem_usage."""
    mu = (metric or {}).get("mem_usage") or {}
    return to_bytes(mu.get("free_vram")), to_bytes(mu.get("total_gtt")), to_bytes(mu.get("free_gtt"))


def build_gpu(
    index: int,
    name: str | None,
    gfx: str | None,
    vram_total: int | None,
    vram_free: int | None = None,
    gtt_total: int | None = None,
    gtt_free: int | None = None,
    pci_bus_id: str | None = None,
    uuid: str | None = None,
    utilization: float | None = None,
    source: str = "amdsmi",
) -> GPUInfo:
    """Assemble one AMD GPUInfo. On an APU the GPU allocates from the VRAM carve-out *and* GTT
    (system RAM), so both count toward what a model can use there."""
    gfx = normalize_gfx(gfx)
    integrated = amd_integrated(gfx)
    total, free = vram_total or 0, vram_free
    if integrated and gtt_total:
        total += gtt_total
        free = None if vram_free is None or gtt_free is None else vram_free + gtt_free
    return GPUInfo(
        index=index,
        name=name or "AMD GPU",  # market names are pci.ids lines; kept as reported, not guessed
        vendor="amd",
        memory_total=total,
        memory_free=free,
        arch=gfx,
        family=amd_family(gfx),
        integrated=integrated,
        pci_bus_id=_na(pci_bus_id),
        uuid=_na(uuid),
        utilization=utilization,
        source=source,
        memory_shared=gtt_total if integrated else None,
    )


def parse_amd_smi_json(static: Any, listing: Any = None, metric: Any = None) -> tuple[GPUInfo, ...]:
    """GPUs from ``amd-smi static --json`` (+ optional ``list --json`` / ``metric --json``)."""
    lst = {d.get("gpu"): d for d in _gpu_list(listing)}
    met = {d.get("gpu"): d for d in _gpu_list(metric)}
    out = []
    for pos, d in enumerate(_gpu_list(static)):
        idx = d.get("gpu", pos)
        asic = d.get("asic") or {}
        board = d.get("board") or {}
        vram = d.get("vram") or {}
        vfree, gtt, gfree = _gtt_and_free(met.get(idx))
        usage = (met.get(idx) or {}).get("usage") or {}
        act = usage.get("gfx_activity")
        act_v = act.get("value") if isinstance(act, dict) else act
        out.append(
            build_gpu(
                index=int(idx),
                name=_na(asic.get("market_name")) or _na(board.get("product_name")),
                gfx=str(asic.get("target_graphics_version") or "") or None,
                vram_total=to_bytes(vram.get("size")) or to_bytes(vram.get("vram_size")),
                vram_free=vfree,
                gtt_total=gtt,
                gtt_free=gfree,
                pci_bus_id=(d.get("bus") or {}).get("bdf") or (lst.get(idx) or {}).get("bdf"),
                uuid=(lst.get(idx) or {}).get("uuid"),
                utilization=float(act_v) if isinstance(act_v, (int, float)) else None,
                source="amd-smi",
            )
        )
    return tuple(out)


def _from_library(lib: Any) -> tuple[GPUInfo, ...]:
    lib.amdsmi_init()
    try:
        out = []
        for i, h in enumerate(lib.amdsmi_get_processor_handles()):
            asic = lib.amdsmi_get_gpu_asic_info(h)

            def opt(fn: str, *args: Any, _h: Any = h) -> Any:
                try:
                    return getattr(lib, fn)(_h, *args)
                except Exception:
                    return None

            mt = lib.AmdSmiMemoryType
            vram = opt("amdsmi_get_gpu_memory_total", mt.VRAM)
            vram_used = opt("amdsmi_get_gpu_memory_usage", mt.VRAM)
            gtt = opt("amdsmi_get_gpu_memory_total", mt.GTT)
            gtt_used = opt("amdsmi_get_gpu_memory_usage", mt.GTT)
            act = opt("amdsmi_get_gpu_activity") or {}
            out.append(
                build_gpu(
                    index=i,
                    name=asic.get("market_name"),
                    gfx=str(asic.get("target_graphics_version") or "") or None,
                    vram_total=vram,
                    vram_free=None if vram is None or vram_used is None else vram - vram_used,
                    gtt_total=gtt,
                    gtt_free=None if gtt is None or gtt_used is None else gtt - gtt_used,
                    pci_bus_id=opt("amdsmi_get_gpu_device_bdf"),
                    uuid=opt("amdsmi_get_gpu_device_uuid"),
                    utilization=act.get("gfx_activity") if isinstance(act.get("gfx_activity"), int) else None,
                    source="amdsmi",
                )
            )
        return tuple(out)
    finally:
        try:
            lib.amdsmi_shut_down()
        except Exception:
            pass


def _from_cli() -> tuple[GPUInfo, ...]:
    static = json.loads(run_tool(["amd-smi", "static", "--json"]))
    extras: list[Any] = []
    for sub in ("list", "metric"):
        try:
            extras.append(json.loads(run_tool(["amd-smi", sub, "--json"])))
        except (ToolUnavailable, ValueError):
            extras.append(None)  # static alone still names the GPUs
    return parse_amd_smi_json(static, *extras)


class AMDSMIDetector:
    """AMD GPUs via the amdsmi library, falling back to the amd-smi CLI."""

    name = "amdsmi"

    def __init__(self, lib: Any | None = None, use_library: bool = True) -> None:
        self._lib = lib
        self._use_library = use_library

    def detect(self) -> DetectorResult:
        def body() -> tuple[GPUInfo, ...]:
            lib = self._lib
            if lib is None and self._use_library:
                lib = optional_import("amdsmi")
            if lib is not None:
                try:
                    return _from_library(lib)
                except Exception as e:
                    lib_err = f"amdsmi library: {type(e).__name__}: {e}"
                    try:
                        return _from_cli()
                    except ToolUnavailable as e2:
                        raise ToolUnavailable(f"{lib_err}; {e2}") from e2
            try:
                return _from_cli()
            except ToolUnavailable as e:
                raise ToolUnavailable(f"amdsmi library not installed and {e}") from e

        return guarded(self.name, body)
