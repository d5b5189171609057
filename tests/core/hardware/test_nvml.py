"""NVMLDetector replayed from our own recordings on the lent H100 (and H200), plus this box."""

from __future__ import annotations

import pytest

from tests.core.hardware.hwfixtures import FIXTURES, NVMLReplay
from xgen_jupyter.core.hardware.nvml import NVMLDetector


def test_h100_replay() -> None:
    nv = NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")
    det = NVMLDetector(nvml=nv)
    res = det.detect()
    assert res.available, res.reason
    (g,) = res.gpus
    assert g.name == "NVIDIA H100 80GB HBM3"
    assert g.vendor == "nvidia"
    assert g.memory_total == 85520809984
    assert g.memory_free == 85017493504
    assert g.memory_used == 503316480
    assert (g.compute_capability, g.arch, g.family) == ("9.0", "sm_90", "Hopper")
    assert g.pci_bus_id == "00000000:00:06.0"
    assert g.uuid == "GPU-a2e344e3-01af-ef82-4e20-0736cfd3aa28"
    assert g.mig is False
    assert g.utilization == 0.0
    assert g.integrated is False
    assert g.source == "nvml"
    assert det.driver_version == "580.159.04"
    assert det.nvml_version == "13.580.159.04"


def test_h200_replay() -> None:
    (g,) = NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h200.nvml.json")).detect().gpus
    assert g.name == "NVIDIA H200"
    assert g.memory_total == 150754820096
    assert g.family == "Hopper"


def test_two_h200_replay_and_a_split_plan_on_busy_cards() -> None:
    """Both cards of the two-GPU machine, in PCI order; with other jobs on both (free memory
    lowered as the run's fillers did) a model that fits neither card alone is split over both."""
    from dataclasses import replace

    from tests.core.planning.test_memory import llama_shaped
    from xgen_jupyter.core.adapters.registry import backend_ids, row
    from xgen_jupyter.core.hardware.types import CPUInfo, HardwareReport
    from xgen_jupyter.core.planning.backend import BackendInstall
    from xgen_jupyter.core.planning.context import GiB, PlanInputs
    from xgen_jupyter.core.planning.planner import plan
    from xgen_jupyter.core.planning.request import parse_request

    gpus = NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-2xh200.nvml.json")).detect().gpus
    assert [(g.index, g.name, g.pci_bus_id) for g in gpus] == [
        (0, "NVIDIA H200", "00000000:00:06.0"), (1, "NVIDIA H200", "00000000:00:07.0")]  # fmt: skip
    busy = tuple(replace(g, memory_free=int(5.3 * GiB)) for g in gpus)  # the margin (~0.1 GiB) + 5 GiB, with room
    report = HardwareReport("nvml", busy, CPUInfo(16, 32, 256 * GiB, 200 * GiB, "cpu"), ())
    inst = {b: BackendInstall(row(b), b == "llama-server-cuda", "/opt/x") for b in backend_ids()}
    facts = llama_shaped(32, 4096, 32, 8, 14336)
    p = plan(PlanInputs(report, facts, parse_request({"model": "m"}), inst, "m"))
    assert p.settings.split_mode == "layer" and p.gpus == (0, 1) and p.settings.n_gpu_layers == 33
    assert all(u <= b for u, b in zip(p.memory.per_gpu, p.memory.per_gpu_budget, strict=True))


def test_sampling_reuses_cached_handles() -> None:
    """Like nvdashboard: init + handles once, then only memory/utilisation per poll."""
    nv = NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")
    det = NVMLDetector(nvml=nv)
    det.detect()
    names_before = nv.calls["nvmlDeviceGetName"]
    for _ in range(5):
        (g,) = det.sample()
        assert g.memory_free == 85017493504
        assert g.name == "NVIDIA H100 80GB HBM3"
    assert nv.calls["nvmlInit"] == 1
    assert nv.calls["nvmlDeviceGetHandleByIndex"] == 1
    assert nv.calls["nvmlDeviceGetName"] == names_before  # static facts not re-read
    assert nv.calls["nvmlDeviceGetMemoryInfo"] == 1 + 5


def test_sample_before_detect_detects() -> None:
    det = NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json"))
    assert [g.name for g in det.sample()] == ["NVIDIA H100 80GB HBM3"]


def test_mig_enabled_and_unsupported_fields(tmp_path: object) -> None:
    """A recorded error (field unsupported) hides only that field, and MIG (1, 1) is reported."""
    nv = NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")
    dev = nv.data["devices"][0]
    dev["nvmlDeviceGetMigMode"] = [1, 1]
    dev["nvmlDeviceGetUtilizationRates"] = {"error": "Not Supported"}  # MIG mode: no utilisation
    (g,) = NVMLDetector(nvml=nv).detect().gpus
    assert g.mig is True
    assert g.utilization is None
    assert g.memory_total == 85520809984


def test_memory_error_makes_detector_unavailable_not_raise() -> None:
    nv = NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")
    nv.data["devices"][0]["nvmlDeviceGetMemoryInfo"] = {"error": "GPU is lost"}
    res = NVMLDetector(nvml=nv).detect()
    assert res.available is False
    assert res.reason == "unavailable: NVMLReplayError: GPU is lost"


def test_real_pynvml_on_this_box() -> None:
    """The real pynvml here: either no driver (unavailable with a reason) or real GPUs."""
    pytest.importorskip("pynvml")
    res = NVMLDetector().detect()
    if res.available:
        assert all(g.vendor == "nvidia" and g.memory_total > 0 for g in res.gpus)
    else:
        assert res.reason.startswith("unavailable: ")
        assert res.gpus == ()
