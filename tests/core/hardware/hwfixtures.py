"""Helpers for hardware tests: recorded fixtures, fake tools on PATH, NVML replay."""

from __future__ import annotations

import json
import shutil
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from xgen_jupyter.core.hardware import chain

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "devices"
SHARED = REPO.parent / "shared" / "devices"


def shared_file(name: str) -> Path:
    """A git-sourced recording from ../shared/devices (not copied into the repo): skip if absent."""
    p = SHARED / name
    if not p.is_file():
        pytest.skip(f"{p} not present (shared device recordings live outside the repo)")
    return p


@pytest.fixture(autouse=True)
def _fresh_hardware_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("XGEN_HARDWARE_REPORT", raising=False)
    chain.use_detectors(None)
    yield
    chain.use_detectors(None)


FakeTools = Callable[[dict[str, dict[str, Path | None]]], Path]


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    """Put shell scripts on PATH that replay recorded output.

    ``{"amd-smi": {"static": path, "metric": None}}``: ``amd-smi static ...`` cats ``path``,
    ``amd-smi metric ...`` exits 1 (not recorded), anything else exits 2. The key ``""``
    matches any arguments. The real subprocess path and parser run on the recording.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()

    def make(tools: dict[str, dict[str, Path | None]]) -> Path:
        for tool, subs in tools.items():
            lines = ["#!/bin/sh", 'case "$1" in']
            for sub, path in subs.items():
                pat = "*" if sub == "" else sub
                body = f"cat '{path}'" if path else "echo 'not recorded' >&2; exit 1"
                lines.append(f"  {pat}) {body} ;;")
            lines += ["  *) echo \"fake $0: unexpected $*\" >&2; exit 2 ;;", "esac"]
            script = bindir / tool
            script.write_text("\n".join(lines) + "\n")
            script.chmod(script.stat().st_mode | stat.S_IEXEC)
        # PATH is only our bin dir (plus `cat` for the scripts): a real tool of the same name
        # elsewhere, e.g. this box's vulkaninfo, must not leak in.
        cat = bindir / "cat"
        if not cat.exists():
            cat.symlink_to(shutil.which("cat") or "/bin/cat")
        monkeypatch.setenv("PATH", str(bindir))
        return bindir

    return make


class NVMLReplayError(Exception):
    pass


class NVMLReplay:
    """pynvml's functions, answering from a JSON dump made by benchmarks/gpu/record_nvml.py."""

    NVMLError = NVMLReplayError

    def __init__(self, path: Path) -> None:
        self.data: dict[str, Any] = json.loads(path.read_text())
        self.calls: Counter[str] = Counter()

    def _dev(self, h: int, key: str) -> Any:
        self.calls[key] += 1
        v = self.data["devices"][h][key]
        if isinstance(v, dict) and set(v) == {"error"}:
            raise NVMLReplayError(v["error"])
        return v

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1

    def nvmlDeviceGetCount(self) -> int:
        return int(self.data["nvmlDeviceGetCount"])

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        self.calls["nvmlDeviceGetHandleByIndex"] += 1
        return i

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self.data["nvmlSystemGetDriverVersion"])

    def nvmlSystemGetNVMLVersion(self) -> str:
        return str(self.data["nvmlSystemGetNVMLVersion"])

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return str(self._dev(h, "nvmlDeviceGetName")).encode()  # old pynvml returned bytes

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(**self._dev(h, "nvmlDeviceGetMemoryInfo"))

    def nvmlDeviceGetCudaComputeCapability(self, h: int) -> tuple[int, int]:
        return tuple(self._dev(h, "nvmlDeviceGetCudaComputeCapability"))

    def nvmlDeviceGetPciInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(**self._dev(h, "nvmlDeviceGetPciInfo"))

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return str(self._dev(h, "nvmlDeviceGetUUID"))

    def nvmlDeviceGetMigMode(self, h: int) -> list[int]:
        return list(self._dev(h, "nvmlDeviceGetMigMode"))

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(**self._dev(h, "nvmlDeviceGetUtilizationRates"))
