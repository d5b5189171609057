"""AMD detection replayed from real recordings: amd-smi JSON, the amdsmi library, rocminfo."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.core.hardware.hwfixtures import FIXTURES, FakeTools, shared_file
from xgen_jupyter.core.hardware.amd import AMDSMIDetector, parse_amd_smi_json, to_bytes
from xgen_jupyter.core.hardware.rocminfo import RocminfoDetector, parse_rocminfo

GIB, MIB = 1024**3, 1024**2


def test_strix_halo_amd_smi_cli(fake_tools: FakeTools) -> None:
    """Strix Halo (gfx1151) via `amd-smi static/list --json`; `metric` was not recorded → fails."""
    fake_tools(
        {
            "amd-smi": {
                "static": shared_file("strix-halo-gfx1151.amd-smi-static.json"),
                "list": shared_file("strix-halo-gfx1151.amd-smi-list.json"),
                "metric": None,
            }
        }
    )
    res = AMDSMIDetector(use_library=False).detect()
    assert res.available, res.reason
    (g,) = res.gpus
    assert g.arch == "gfx1151"
    assert g.family == "RDNA"
    assert g.integrated is True
    assert g.vendor == "amd"
    assert "8060S" in g.name
    assert g.memory_total == 32768 * MIB  # the carve-out amd-smi static reports
    assert g.memory_free is None  # metric not available: free unknown, not invented
    assert g.pci_bus_id == "0000:c4:00.0"
    assert g.uuid == "00ff1586-0000-1000-8000-000000000000"
    assert g.source == "amd-smi"


def test_amd_smi_metric_adds_gtt_on_apu() -> None:
    """With `metric --json` mem_usage, an APU's GTT pool counts toward usable memory."""
    static = json.loads(shared_file("strix-halo-gfx1151.amd-smi-static.json").read_text())
    metric = {
        "gpu_data": [  # newer wrapper shape; values in amd-smi's {"value","unit"} form
            {
                "gpu": 0,
                "usage": {"gfx_activity": {"value": 7, "unit": "%"}},
                "mem_usage": {
                    "free_vram": {"value": 30000, "unit": "MB"},
                    "total_gtt": {"value": 65536, "unit": "MB"},
                    "free_gtt": {"value": 60000, "unit": "MB"},
                },
            }
        ]
    }
    (g,) = parse_amd_smi_json(static, None, metric)
    assert g.memory_shared == 65536 * MIB
    assert g.memory_total == (32768 + 65536) * MIB
    assert g.memory_free == (30000 + 60000) * MIB
    assert g.utilization == 7.0


def test_mi300x_vram_size_json() -> None:
    vram = json.loads((FIXTURES / "mi300x-gfx942.amd-smi-static-vram.json").read_text())
    assert to_bytes(vram["size"]) == 196592 * MIB
    assert to_bytes("N/A") is None
    assert to_bytes("24560 MB") == 24560 * MIB


def _amdsmi_replay(static_path: Path, list_path: Path) -> Any:
    """The amdsmi library's calls answered from the recorded `amd-smi static/list --json`
    (the CLI is a thin layer over the same library calls)."""
    static = json.loads(static_path.read_text())
    listing = json.loads(list_path.read_text())

    def total(h: int, mt: str) -> int:
        if mt == "VRAM":
            v = to_bytes(static[h]["vram"]["size"])
            assert v is not None
            return v
        raise RuntimeError("AMDSMI_STATUS_NOT_SUPPORTED")  # GTT was not recorded

    return SimpleNamespace(
        AmdSmiMemoryType=SimpleNamespace(VRAM="VRAM", GTT="GTT"),
        amdsmi_init=lambda: None,
        amdsmi_shut_down=lambda: None,
        amdsmi_get_processor_handles=lambda: list(range(len(static))),
        amdsmi_get_gpu_asic_info=lambda h: static[h]["asic"],
        amdsmi_get_gpu_memory_total=total,
        amdsmi_get_gpu_device_bdf=lambda h: static[h]["bus"]["bdf"],
        amdsmi_get_gpu_device_uuid=lambda h: listing[h]["uuid"],
    )


def test_strix_halo_amdsmi_library_replay() -> None:
    lib = _amdsmi_replay(
        shared_file("strix-halo-gfx1151.amd-smi-static.json"),
        shared_file("strix-halo-gfx1151.amd-smi-list.json"),
    )
    res = AMDSMIDetector(lib=lib).detect()
    assert res.available, res.reason
    (g,) = res.gpus
    assert (g.arch, g.family, g.integrated, g.source) == ("gfx1151", "RDNA", True, "amdsmi")
    assert g.memory_total == 32 * GIB
    assert g.memory_shared is None  # GTT query unsupported in the replay: kept unknown
    assert g.pci_bus_id == "0000:c4:00.0"


def test_broken_amdsmi_library_falls_back_to_cli(fake_tools: FakeTools) -> None:
    fake_tools({"amd-smi": {"static": shared_file("strix-halo-gfx1151.amd-smi-static.json"), "list": None,
                            "metric": None}})

    def boom() -> None:
        raise OSError("libamd_smi.so: cannot open shared object file")

    res = AMDSMIDetector(lib=SimpleNamespace(amdsmi_init=boom, amdsmi_shut_down=lambda: None)).detect()
    assert res.available, res.reason
    assert res.gpus[0].arch == "gfx1151"
    assert res.gpus[0].uuid is None  # `list` failed: the GPU is still there


def test_amd_unavailable_without_library_or_cli(fake_tools: FakeTools) -> None:
    fake_tools({})
    res = AMDSMIDetector(use_library=False).detect()
    assert res.available is False
    assert res.reason == "unavailable: amdsmi library not installed and amd-smi not found on PATH"
    assert res.gpus == ()


def test_amd_smi_garbage_output_is_unavailable_not_a_raise(tmp_path: Path, fake_tools: FakeTools) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("Traceback (most recent call last):\n  amdsmi.AmdSmiLibraryException\n")
    fake_tools({"amd-smi": {"": junk}})
    res = AMDSMIDetector(use_library=False).detect()
    assert res.available is False
    assert res.reason.startswith("unavailable: JSONDecodeError")


# --- rocminfo -----------------------------------------------------------------------------


def test_rx7900xtx_rocminfo_wsl(fake_tools: FakeTools) -> None:
    fake_tools({"rocminfo": {"": FIXTURES / "rx7900xtx-gfx1100-wsl2.rocminfo.txt"}})
    res = RocminfoDetector().detect()
    assert res.available, res.reason
    (g,) = res.gpus
    assert (g.name, g.arch, g.family, g.integrated) == ("AMD Radeon RX 7900 XTX", "gfx1100", "RDNA", False)
    assert 23 * GIB < g.memory_total <= 24 * GIB
    assert g.pci_bus_id is None and g.uuid is None  # WSL exposes neither


def test_dual_rx7900xtx_rocminfo(fake_tools: FakeTools) -> None:
    fake_tools({"rocminfo": {"": FIXTURES / "dual-rx7900xtx-gfx1100.rocminfo.txt"}})
    res = RocminfoDetector().detect()
    assert [g.index for g in res.gpus] == [0, 1]
    assert {g.arch for g in res.gpus} == {"gfx1100"}
    assert all(not g.integrated and g.family == "RDNA" for g in res.gpus)
    assert [g.memory_total for g in res.gpus] == [25149440 * 1024] * 2
    assert [g.pci_bus_id for g in res.gpus] == ["0000:03:00.0", "0000:0c:00.0"]
    assert len({g.uuid for g in res.gpus}) == 2  # the CPU agent (i9-13900K) is not a GPU


def test_mi300x_rocminfo_eight_gpus(fake_tools: FakeTools) -> None:
    fake_tools({"rocminfo": {"": shared_file("mi300x-8gpu-gfx942.rocminfo.txt")}})  # has ANSI escapes
    res = RocminfoDetector().detect()
    assert len(res.gpus) == 8
    g = res.gpus[0]
    assert (g.name, g.arch, g.family, g.integrated) == ("AMD Instinct MI300X", "gfx942", "CDNA", False)
    assert 191 * GIB < g.memory_total <= 192 * GIB


def test_strix_halo_rocminfo_gtt_pool() -> None:
    (g,) = parse_rocminfo((FIXTURES / "strix-halo-gfx1151.rocminfo.txt").read_text())
    assert (g.arch, g.integrated) == ("gfx1151", True)
    assert g.memory_total == 125829120 * 1024  # 120 GiB GTT-backed pool, not a 512 MiB carve-out
    assert g.uuid is None  # "GPU-XX": no unique id


def test_strix_halo_rocminfo_with_npu_skips_dsp_agent() -> None:
    gpus = parse_rocminfo(shared_file("strix-halo-gfx1151.rocminfo-with-npu.txt").read_text())
    assert [g.name for g in gpus] == ["Radeon 8060S Graphics"]  # the aie2 NPU (DSP) is not a GPU
    assert gpus[0].memory_total == 64 * GIB


@pytest.mark.parametrize("text", ["", "ROCk module is NOT loaded, possibly no GPU devices\n", "\x00\xff"])
def test_rocminfo_without_gpus(text: str) -> None:
    assert parse_rocminfo(text) == ()
