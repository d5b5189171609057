"""gfx target → family / integrated, and NVIDIA compute capability → generation."""

from __future__ import annotations

import pytest

from xgen_jupyter.core.hardware.classify import (
    amd_family,
    amd_integrated,
    cc_string,
    normalize_gfx,
    nvidia_arch,
    nvidia_generation,
    vendor_from_pci_id,
)


@pytest.mark.parametrize(
    ("target", "family", "integrated"),
    [
        ("gfx1151", "RDNA", True),  # Strix Halo
        ("gfx1150", "RDNA", True),
        ("gfx1152", "RDNA", True),
        ("gfx1103", "RDNA", True),  # Phoenix 780M
        ("gfx1036", "RDNA", True),  # Raphael iGPU
        ("gfx1035", "RDNA", True),
        ("gfx1100", "RDNA", False),  # RX 7900 XTX
        ("gfx1030", "RDNA", False),
        ("gfx1201", "RDNA", False),  # RX 9070
        ("gfx942", "CDNA", False),  # MI300X
        ("gfx90a", "CDNA", False),
        ("gfx908", "CDNA", False),
        ("gfx950", "CDNA", False),
        ("gfx906", "GCN", False),
        ("gfx900", "GCN", False),
        ("gfx90c", "GCN", True),  # Renoir APU
        ("gfx902", "GCN", True),
        ("gfx803", "GCN", False),
    ],
)
def test_amd_classification(target: str, family: str, integrated: bool) -> None:
    assert amd_family(target) == family
    assert amd_integrated(target) is integrated


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("gfx942:sramecc+:xnack-", "gfx942"),  # llama-bench / rocminfo ISA form
        ("GFX1151", "gfx1151"),
        ("amdgcn-amd-amdhsa--gfx1100", "gfx1100"),
        ("0x1151", "gfx1151"),
        ("", None),
        ("N/A", None),
        (None, None),
    ],
)
def test_normalize_gfx(raw: str | None, norm: str | None) -> None:
    assert normalize_gfx(raw) == norm


def test_unknown_amd_target_has_no_family() -> None:
    assert amd_family("not-a-gpu") is None
    assert amd_integrated("not-a-gpu") is False


@pytest.mark.parametrize(
    ("cc", "gen", "arch"),
    [
        ((7, 0), "Volta", "sm_70"),
        ((7, 5), "Turing", "sm_75"),
        ((8, 0), "Ampere", "sm_80"),
        ((8, 6), "Ampere", "sm_86"),
        ((8, 7), "Ampere", "sm_87"),
        ((8, 9), "Ada", "sm_89"),
        ((9, 0), "Hopper", "sm_90"),
        ((10, 0), "Blackwell", "sm_100"),
        ((12, 0), "Blackwell", "sm_120"),
        ("9.0", "Hopper", "sm_90"),
        ("sm_89", "Ada", "sm_89"),
        ([8, 6], "Ampere", "sm_86"),
    ],
)
def test_nvidia_generation(cc: object, gen: str, arch: str) -> None:
    assert nvidia_generation(cc) == gen  # type: ignore[arg-type]
    assert nvidia_arch(cc) == arch  # type: ignore[arg-type]


def test_bad_compute_capability() -> None:
    assert nvidia_generation("banana") is None
    assert nvidia_arch(None) is None
    assert cc_string((9, 0)) == "9.0"


@pytest.mark.parametrize(
    ("vid", "vendor"),
    [("0x1002", "amd"), ("0x10de", "nvidia"), ("0x8086", "intel"), ("0x10005", "other"), (None, "other"),
     ("junk", "other")],
)
def test_vendor_ids(vid: str | None, vendor: str) -> None:
    assert vendor_from_pci_id(vid) == vendor
