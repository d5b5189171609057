"""Name what a GPU is from its arch string: AMD gfx target → family, NVIDIA CC → generation."""

from __future__ import annotations

import re

#: AMD APUs (GPU shares system RAM). Sources: LLVM AMDGPU processor table + ROCm docs.
_AMD_INTEGRATED = frozenset(
    {
        "gfx801",  # Carrizo
        "gfx810",  # Stoney
        "gfx902",  # Raven Ridge
        "gfx909",  # Raven2
        "gfx90c",  # Renoir / Cezanne / Lucienne
        "gfx1013",  # Cyan Skillfish
        "gfx1033",  # Van Gogh (Steam Deck)
        "gfx1035",  # Rembrandt (680M)
        "gfx1036",  # Raphael / Granite Ridge iGPU
        "gfx1037",  # Mendocino
        "gfx1103",  # Phoenix / Hawk Point (780M)
        "gfx1150",  # Strix Point (890M)
        "gfx1151",  # Strix Halo (8060S)
        "gfx1152",  # Krackan Point
        "gfx1153",
    }
)
#: Vega-era GCN chips that ROCm still lists under gfx9 but are not CDNA.
_AMD_GCN = frozenset({"gfx900", "gfx902", "gfx904", "gfx906", "gfx909", "gfx90c"})

_GFX_RE = re.compile(r"gfx([0-9a-f]{3,4})", re.IGNORECASE)


def normalize_gfx(target: str | None) -> str | None:
    """``gfx942:sramecc+:xnack-`` / ``GFX1151`` / ``0x1151`` → ``gfx942`` / ``gfx1151``."""
    if not target:
        return None
    t = target.strip()
    m = _GFX_RE.search(t)
    if m:
        return "gfx" + m.group(1).lower()
    # amd-smi's TARGET_GRAPHICS_VERSION is sometimes a bare hex id like "0x1151".
    if re.fullmatch(r"(0x)?[0-9a-fA-F]{3,4}", t):
        return "gfx" + t.lower().removeprefix("0x")
    return None


def amd_family(target: str | None) -> str | None:
    """``CDNA`` (gfx908+ gfx9 datacentre), ``GCN`` (Vega and older), ``RDNA`` (gfx10-12)."""
    gfx = normalize_gfx(target)
    if gfx is None:
        return None
    num = gfx[3:]
    if gfx in _AMD_GCN or (len(num) == 3 and num[0] in "678"):
        return "GCN"
    if len(num) == 3 and num[0] == "9":
        return "CDNA"
    if len(num) == 4 and num[:2] in ("10", "11", "12"):
        return "RDNA"
    return None


def amd_integrated(target: str | None) -> bool:
    """True for APU targets whose GPU memory is carved from system RAM."""
    return normalize_gfx(target) in _AMD_INTEGRATED


_NV_GENERATIONS: dict[int, str] = {
    3: "Kepler",
    5: "Maxwell",
    6: "Pascal",
    7: "Volta",  # 7.5 is Turing: handled below
    8: "Ampere",  # 8.9 is Ada: handled below
    9: "Hopper",
    10: "Blackwell",
    11: "Blackwell",
    12: "Blackwell",
}


def parse_compute_capability(cc: str | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """``"9.0"`` / ``(9, 0)`` / ``"sm_90"`` → ``(9, 0)``."""
    if cc is None:
        return None
    if isinstance(cc, (tuple, list)):
        return (int(cc[0]), int(cc[1])) if len(cc) >= 2 else None
    s = cc.strip().lower().removeprefix("sm_").removeprefix("compute_")
    m = re.fullmatch(r"(\d+)\.(\d+)", s) or re.fullmatch(r"(\d+?)(\d)a?", s)
    return (int(m.group(1)), int(m.group(2))) if m else None


def nvidia_generation(cc: str | tuple[int, int] | list[int] | None) -> str | None:
    """Compute capability → architecture generation name (``Hopper`` for 9.0)."""
    p = parse_compute_capability(cc)
    if p is None:
        return None
    major, minor = p
    if major == 7 and minor >= 5:
        return "Turing"
    if major == 8 and minor == 9:
        return "Ada"
    return _NV_GENERATIONS.get(major)


def nvidia_arch(cc: str | tuple[int, int] | list[int] | None) -> str | None:
    """Compute capability → ``sm_90``."""
    p = parse_compute_capability(cc)
    return None if p is None else f"sm_{p[0]}{p[1]}"


def cc_string(cc: str | tuple[int, int] | list[int] | None) -> str | None:
    p = parse_compute_capability(cc)
    return None if p is None else f"{p[0]}.{p[1]}"


def vendor_from_pci_id(vendor_id: int | str | None) -> str:
    """PCI vendor id → ``amd`` / ``nvidia`` / ``intel`` / ``other``."""
    if vendor_id is None:
        return "other"
    try:
        v = int(vendor_id, 0) if isinstance(vendor_id, str) else int(vendor_id)
    except ValueError:
        return "other"
    return {0x1002: "amd", 0x1022: "amd", 0x10DE: "nvidia", 0x8086: "intel"}.get(v, "other")
