"""The detection chain: order, every result kept, Vulkan always, caching, injected reports."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.core.hardware.hwfixtures import FIXTURES, FakeTools, NVMLReplay, shared_file
from xgen_jupyter.core.errors import XGenError
from xgen_jupyter.core.hardware import chain
from xgen_jupyter.core.hardware.amd import AMDSMIDetector
from xgen_jupyter.core.hardware.nvml import NVMLDetector
from xgen_jupyter.core.hardware.rocminfo import RocminfoDetector
from xgen_jupyter.core.hardware.types import DetectorResult, GPUInfo, HardwareReport
from xgen_jupyter.core.hardware.vulkan import VulkanDetector


class Counting:
    """A detector stand-in that counts calls; for chain logic, not for parsing."""

    def __init__(self, name: str, gpus: int = 0, raises: bool = False) -> None:
        self.name, self.n, self.raises, self.calls = name, gpus, raises, 0

    def detect(self) -> DetectorResult:
        self.calls += 1
        if self.raises:
            raise RuntimeError("broken detector")
        g = tuple(
            GPUInfo(index=i, name=f"{self.name}{i}", vendor="other", memory_total=1) for i in range(self.n)
        )
        return DetectorResult(self.name, True, g)


def test_first_detector_with_gpus_wins_and_all_are_recorded() -> None:
    a, b, c = Counting("a"), Counting("b", gpus=2), Counting("c", gpus=1)
    r = chain.build_report([a, b, c])
    assert r.method == "b"
    assert [g.name for g in r.gpus] == ["b0", "b1"]
    assert [d.name for d in r.detectors] == ["a", "b", "c"]
    assert (a.calls, b.calls, c.calls) == (1, 1, 0)
    assert r.detectors[2].reason == "skipped: b found GPUs first"
    assert r.cpu.cores_logical >= 1 and r.cpu.memory_total > 0


def test_raising_detector_is_recorded_not_propagated() -> None:
    r = chain.build_report([Counting("bad", raises=True), Counting("ok", gpus=1)])
    assert r.method == "ok"
    assert r.detectors[0].reason == "unavailable: RuntimeError: broken detector"


def test_no_gpus_means_cpu() -> None:
    r = chain.build_report([Counting("a"), Counting("b")])
    assert (r.method, r.gpus, r.has_gpu) == ("cpu", (), False)


def test_amd_box_replayed_through_default_order(fake_tools: FakeTools) -> None:
    """Strix Halo: amd-smi wins; NVML (real pynvml, no driver) and torch are not even tried;
    Vulkan still runs and lists the iGPU."""
    fake_tools(
        {
            "amd-smi": {"static": shared_file("strix-halo-gfx1151.amd-smi-static.json"),
                        "list": shared_file("strix-halo-gfx1151.amd-smi-list.json"), "metric": None},
            "rocminfo": {"": FIXTURES / "strix-halo-gfx1151.rocminfo.txt"},
            "vulkaninfo": {"--summary": FIXTURES / "strix-halo-gfx1151-windows.vulkaninfo-summary.txt"},
        }
    )
    chain.use_detectors([AMDSMIDetector(use_library=False), *chain.default_detectors()[1:]])
    r = chain.detect_hardware()
    assert r.method == "amdsmi"
    assert [g.arch for g in r.gpus] == ["gfx1151"] and r.gpus[0].integrated
    names = ["amdsmi", "rocminfo", "nvml", "torch-rocm", "torch-cuda", "vulkan"]
    assert [d.name for d in r.detectors] == names
    assert all(d.reason.startswith("skipped") for d in r.detectors[1:5])
    assert r.detectors[5].available
    assert [v.name for v in r.vulkan_devices] == ["AMD Radeon(TM) 8060S Graphics"]


def test_rocminfo_wins_when_amd_smi_absent(fake_tools: FakeTools) -> None:
    fake_tools({"rocminfo": {"": FIXTURES / "dual-rx7900xtx-gfx1100.rocminfo.txt"}})
    r = chain.build_report([AMDSMIDetector(use_library=False), RocminfoDetector(), VulkanDetector()])
    assert r.method == "rocminfo"
    assert len(r.gpus) == 2
    assert r.detectors[0].reason.startswith("unavailable: ")
    assert r.detectors[2].reason == "unavailable: vulkaninfo not found on PATH"
    assert r.vulkan_devices == ()


def test_nvidia_box_and_sampling(fake_tools: FakeTools) -> None:
    fake_tools({})
    nv = NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")
    chain.use_detectors([AMDSMIDetector(use_library=False), RocminfoDetector(), NVMLDetector(nvml=nv)])
    r = chain.detect_hardware()
    assert r.method == "nvml" and r.gpus[0].name == "NVIDIA H100 80GB HBM3"
    nv.data["devices"][0]["nvmlDeviceGetMemoryInfo"]["free"] = 1000  # the card filled up
    (g,) = chain.sample_gpus()
    assert g.memory_free == 1000
    assert nv.calls["nvmlInit"] == 1 and nv.calls["nvmlDeviceGetHandleByIndex"] == 1
    assert chain.detect_hardware().gpus[0].memory_free == 85017493504  # the report itself is cached


def test_cache_and_refresh() -> None:
    d = Counting("x", gpus=1)
    chain.use_detectors([d])
    r1 = chain.detect_hardware()
    assert chain.detect_hardware() is r1 and d.calls == 1
    r2 = chain.detect_hardware(refresh=True)
    assert r2 is not r1 and d.calls == 2
    assert chain.detect_hardware() is r2


def test_cache_is_thread_safe() -> None:
    d = Counting("x", gpus=1)
    chain.use_detectors([d])
    barrier = threading.Barrier(8)
    got: list[HardwareReport] = []

    def worker() -> None:
        barrier.wait()
        got.append(chain.detect_hardware())

    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert d.calls == 1 and len({id(r) for r in got}) == 1


def test_explicit_detectors_argument() -> None:
    r = chain.detect_hardware(detectors=[Counting("y", gpus=3)])
    assert r.method == "y" and len(r.gpus) == 3
    assert chain.detect_hardware() is r


def test_injected_report_simulates_a_24gb_box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = tmp_path / "box.json"
    box.write_text(json.dumps({"gpus": [{"index": 0, "name": "Sim 24GB", "vendor": "nvidia",
                                          "memory_total": 24 * 1024**3, "memory_free": 23 * 1024**3}]}))
    d = Counting("never")
    chain.use_detectors([d])
    monkeypatch.setenv("XGEN_HARDWARE_REPORT", str(box))
    r = chain.detect_hardware()
    assert r.method == "injected"
    assert r.gpus[0].memory_total == 24 * 1024**3 and r.gpus[0].memory_used == 1024**3
    assert r.cpu.cores_logical >= 1  # cpu left out of the file: the real one
    assert d.calls == 0
    assert chain.sample_gpus() == list(r.gpus)
    monkeypatch.delenv("XGEN_HARDWARE_REPORT")
    assert chain.detect_hardware().method == "cpu" and d.calls == 1  # unset: real detection again


def test_injected_full_report_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = chain.build_report([NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json"))])
    p = tmp_path / "r.json"
    p.write_text(json.dumps(real.to_dict()))
    monkeypatch.setenv("XGEN_HARDWARE_REPORT", str(p))
    r = chain.detect_hardware()
    assert r.gpus == real.gpus and r.cpu == real.cpu and r.detectors == real.detectors
    assert r.method == "injected"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "does not exist"),
        ("{not json", "cannot read hardware report"),
        ("[1, 2]", "must be a JSON object"),
        ('{"gpus": {"a": 1}}', "must be a list"),
        ('{"gpus": [{"index": 0, "name": "x"}]}', "gpus[0] in the hardware report lacks vendor, memory_total"),
    ],
)
def test_bad_injected_report_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, fragment: str
) -> None:
    p = tmp_path / "bad.json"
    if content is not None:
        p.write_text(content)
    monkeypatch.setenv("XGEN_HARDWARE_REPORT", str(p))
    with pytest.raises(XGenError) as ei:
        chain.detect_hardware()
    assert fragment in str(ei.value)


def test_real_detection_on_this_box_never_raises() -> None:
    """The real default chain, here (no GPU): every detector reports, nothing raises."""
    r = chain.detect_hardware(refresh=True)
    assert [d.name for d in r.detectors] == [d.name for d in chain.default_detectors()]
    assert all(d.available or d.reason.startswith(("unavailable: ", "skipped: ")) for d in r.detectors)
    assert r.cpu.memory_total > 0
    json.dumps(r.to_dict())  # serialisable for the REST layer
