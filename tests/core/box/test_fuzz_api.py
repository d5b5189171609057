"""Bad input through the real REST API: model paths outside the model dirs, symlinks out of them,
shell metacharacters; then schemathesis fuzzes every operation in openapi.yaml (bounded in time).
No 5xx, no hang, no engine started by a malformed request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO

from .jupyter_proc import JupyterProc

OPENAPI = REPO / "xgen_jupyter" / "server" / "openapi.yaml"


@pytest.fixture(scope="module")
def jup(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("fuzz")
    models = root / "models"
    models.mkdir()
    (models / "escape.gguf").symlink_to(default_model)  # a symlink pointing out of the model dir
    (models / "sub").mkdir()
    (models / "sub" / "up").symlink_to("/etc")
    outside = root / "outside.gguf"
    shutil.copy(default_model, outside)
    j = JupyterProc(root, "fuzzer", {"shared_dir": str(root / "shared"), "model_dirs": [str(models)],
                                     "allowed_backends": ["llama-cpp-python"], "ready_timeout": 60.0,
                                     "grace_period": 2.0})
    j.outside = outside  # type: ignore[attr-defined]
    j.models = models  # type: ignore[attr-defined]
    j.start()
    yield j
    j.stop()


def engines(j: JupyterProc) -> list[psutil.Process]:
    assert j.proc is not None
    return [c for c in psutil.Process(j.proc.pid).children(recursive=True) if "llama_cpp" in " ".join(c.cmdline())]


BAD_MODELS = [
    ("/etc/passwd", "outside"),
    ("../../../../etc/passwd", ""),
    ("escape.gguf", "outside"),  # the symlink resolves out of the model dir
    ("escape", "outside"),
    ("sub/up/passwd", ""),
    ("x; rm -rf /", "not allowed"),
    ("$(reboot)", "not allowed"),
    ("`id`", "not allowed"),
    ("a|b", "not allowed"),
    ("a && b", "not allowed"),
    ("model\nname", "not allowed"),
    ("a > /tmp/x", "not allowed"),
]


@pytest.mark.parametrize("route", ["servers", "plan"])
def test_paths_outside_symlinks_out_and_shell_metacharacters_are_refused(jup, route):
    cases = [*BAD_MODELS, (str(jup.outside), "outside")]
    for model, needle in cases:
        r = jup.api("POST", route, json={"model": model})
        assert r.status_code == 400, (model, r.status_code, r.text)
        body = r.json()
        assert body["error"] == "ModelError" and needle in body["message"], (model, body)
    for name in ("x;rm", "$(id)", "../up", "a b", "-rf"):
        r = jup.api("POST", route, json={"model": "default", "name": name})
        assert r.status_code == 400 and "not allowed" in r.json()["message"], (name, r.text)
    assert engines(jup) == [] and jup.api("GET", "servers").json()["servers"] == []


@pytest.mark.slow
def test_schemathesis_fuzz_no_5xx_no_hang_no_engine(jup, tmp_path):
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    t0 = time.monotonic()
    cmd = [st, "run", str(OPENAPI), "--url", jup.base, "-H", f"Authorization: token {jup.token}",
           "--checks", "not_a_server_error", "--max-examples", os.environ.get("XGEN_FUZZ_EXAMPLES", "150"),
           "--request-timeout", "30", "--phases", "examples,coverage,fuzzing", "--seed", "7", "--no-color",
           "--report", "ndjson", "--report-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, "NO_COLOR": "1"})
    elapsed = time.monotonic() - t0
    tail = out.stdout[-4000:]
    print(tail)
    assert out.returncode == 0, tail + out.stderr[-2000:]
    assert elapsed < 200
    # Requests that passed validation may have started engines (e.g. {"model": "default"});
    # every engine must belong to a listed server that was loaded from a valid model.
    servers = jup.api("GET", "servers").json()["servers"]
    active = [s for s in servers if s["state"] in ("planned", "starting", "loading", "ready")]
    assert len(engines(jup)) <= len(active)
    for s in servers:
        assert s["model_path"] == str(Path(s["model_path"]).resolve())
        assert s["model"] == "default" or Path(s["model_path"]).is_relative_to(jup.models)
        jup.api("DELETE", f"servers/{s['name']}")
    deadline = time.monotonic() + 10
    while engines(jup) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engines(jup) == []
    assert jup.proc is not None and jup.proc.poll() is None, "the Jupyter server is still up"
