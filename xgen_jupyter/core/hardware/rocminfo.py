"""AMD GPUs from ``rocminfo`` text, for boxes with ROCm but no amd-smi."""

from __future__ import annotations

import re

from .amd import build_gpu
from .base import guarded, run_tool
from .types import DetectorResult, GPUInfo

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_AGENT = re.compile(r"^\*{3,}\s*\n\s*Agent\s+\d+\s*\n\*{3,}\s*$", re.MULTILINE)
_FIELD = re.compile(r"^\s{2}(\S[^:\n]*?):\s*(.*?)\s*$", re.MULTILINE)
_POOL = re.compile(r"Segment:\s*GLOBAL;\s*FLAGS:\s*([^\n]*?)\s*\n\s*Size:\s*(\d+)\(0x[0-9a-fA-F]+\)\s*KB")


def _bdf(bdfid: str | None) -> str | None:
    """rocminfo's BDFID is ``bus << 8 | device << 3 | function`` in decimal."""
    if not bdfid or not bdfid.isdigit() or int(bdfid) == 0:
        return None
    v = int(bdfid)
    return f"0000:{v >> 8:02x}:{(v >> 3) & 0x1F:02x}.{v & 7}"


def parse_rocminfo(text: str) -> tuple[GPUInfo, ...]:
    """One GPUInfo per ``Device Type: GPU`` agent; memory is the largest global pool.

    rocminfo has no free-memory figure, so ``memory_free`` stays None. On an APU its GPU pool
    is the GTT-backed system-RAM aperture, which is what HIP allocates from there.
    """
    text = _ANSI.sub("", text)
    parts = _AGENT.split(text)[1:]
    out: list[GPUInfo] = []
    for body in parts:
        # Agent-level fields are indented by two spaces; deeper ones (ISA names) by more.
        fields: dict[str, str] = {}
        for k, v in _FIELD.findall(body):
            fields.setdefault(k.strip(), v)
        if fields.get("Device Type") != "GPU":
            continue
        pools = [(flags, int(kb) * 1024) for flags, kb in _POOL.findall(body)]
        coarse = [b for f, b in pools if "COARSE" in f]
        size = max(coarse or [b for _, b in pools] or [0])
        uuid = fields.get("Uuid")
        gpu = build_gpu(
            index=len(out),
            name=fields.get("Marketing Name") or fields.get("Name"),
            gfx=fields.get("Name"),
            vram_total=size,
            pci_bus_id=_bdf(fields.get("BDFID")),
            # "GPU-XX" means the device exposes no unique id.
            uuid=None if not uuid or uuid.endswith("-XX") else uuid,
            source="rocminfo",
        )
        out.append(gpu)
    return tuple(out)


class RocminfoDetector:
    """AMD GPUs from the ``rocminfo`` tool (shipped with every ROCm install)."""

    name = "rocminfo"

    def detect(self) -> DetectorResult:
        return guarded(self.name, lambda: parse_rocminfo(run_tool(["rocminfo"])))
