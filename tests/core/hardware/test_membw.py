"""Host memory bandwidth: measured once, cached per CPU in the state dir."""

from __future__ import annotations

import json

from xgen_jupyter.core.hardware import membw
from xgen_jupyter.core.hardware.types import CPUInfo

CPU = CPUInfo(2, 4, 8 << 30, 4 << 30, "Test CPU")


def test_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    first = membw.host_bandwidth(tmp_path, CPU)
    assert first is not None and first > 1e8  # any machine copies faster than 100 MB/s

    def boom(*a, **k):
        raise AssertionError("measured again")

    monkeypatch.setattr(membw, "measure", boom)
    assert membw.host_bandwidth(tmp_path, CPU) == first


def test_another_cpu_or_a_corrupt_cache_measures_again(tmp_path, monkeypatch):
    monkeypatch.setattr(membw, "measure", lambda: 42e9)
    (tmp_path / membw.FILENAME).write_text("{broken")
    assert membw.host_bandwidth(tmp_path, CPU) == 42e9
    assert json.loads((tmp_path / membw.FILENAME).read_text())["bytes_per_s"] == 42e9
    monkeypatch.setattr(membw, "measure", lambda: 7e9)
    other = CPUInfo(64, 128, 1 << 40, 1 << 40, "Bigger CPU")
    assert membw.host_bandwidth(tmp_path, other) == 7e9
