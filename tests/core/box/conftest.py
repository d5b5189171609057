"""Fixtures for the shared-box tests: a private shared folder and a simulated 24 GB NVIDIA box."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GiB = 1024**3
# A simulated box (the "24 GB GPU"), injected through XGEN_HARDWARE_REPORT. Host RAM is
# simulated too (4 GiB), so CPU engines, which reserve host RAM, compete for something small.
SIM_24GB = {
    "gpus": [{"index": 0, "name": "Sim 24GB", "vendor": "nvidia", "memory_total": 24 * GiB,
              "memory_free": 24 * GiB, "uuid": "GPU-sim-24gb", "source": "injected"}],
    "cpu": {"cores_physical": 2, "cores_logical": 2, "memory_total": 4 * GiB, "memory_available": 4 * GiB,
            "model_name": "simulated"},
}


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    return tmp_path / "xgen-shared"


@pytest.fixture
def sim_report(tmp_path: Path) -> Path:
    p = tmp_path / "sim-24gb.json"
    p.write_text(json.dumps(SIM_24GB))
    return p
