"""``xgen pull`` as a user runs it (a subprocess, HF_ENDPOINT on the local hub mirror)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_mirror import HubMirror
from tests.model_files import write_gguf

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def hub(tmp_path: Path) -> Iterator[HubMirror]:
    m = HubMirror()
    m.add("acme/tiny-GGUF", {"tiny-Q4_K_M.gguf": write_gguf(tmp_path / "q4.gguf", n_vocab=20000),
                             "tiny-Q8_0.gguf": write_gguf(tmp_path / "q8.gguf")})  # fmt: skip
    yield m
    m.close()


def _xgen(hub: HubMirror, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "xgen_jupyter", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def test_xgen_pull_prints_progress_and_where_it_went(hub: HubMirror, tmp_path: Path) -> None:
    models = tmp_path / "models"
    r = _xgen(hub, "--model-dir", str(models), "pull", "acme/tiny-GGUF:Q8_0")
    assert r.returncode == 0, r.stderr
    assert "pulled acme/tiny-GGUF -> " + str(models / "tiny-Q8_0.gguf") in r.stdout and "tiny-Q8_0" in r.stdout
    lines = r.stderr.splitlines()  # not a terminal: milestones only, no carriage returns
    assert lines[0].startswith("tiny-Q8_0.gguf [") and "  0.0%" in lines[0]
    assert "checking sha256" in r.stderr and "100.0%" in lines[-1] and "\r" not in r.stderr
    r = _xgen(hub, "--model-dir", str(models), "models", "--json")
    assert "tiny-Q8_0" in [m["name"] for m in json.loads(r.stdout)]


def test_xgen_pull_errors_are_one_line(hub: HubMirror, tmp_path: Path) -> None:
    r = _xgen(hub, "--model-dir", str(tmp_path / "m"), "pull", "acme/tiny-GGUF:Q2_K")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("xgen: error: acme/tiny-GGUF: the quant Q2_K is not there (pick one of: Q4_K_M")
    assert not (tmp_path / "m").exists() and not hub.gets
