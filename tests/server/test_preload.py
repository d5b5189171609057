"""c.XGen.preload: models loaded when Jupyter starts (what scripts/run-lab.sh uses)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.engine


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    bad = tmp_path / "models" / "missing.gguf"
    jp_server_config["XGen"]["preload"] = ["default", str(bad)]
    jp_server_config["XGen"]["allowed_backends"] = ["llama-cpp-python", "llama-server-cpu"]
    return jp_server_config


def test_preload_starts_the_default_model_and_survives_a_bad_entry(jp_serverapp: Any) -> None:
    core = jp_serverapp.web_app.settings["xgen_core"]
    server = core.manager.get("default")  # loading began while Jupyter started
    deadline = time.monotonic() + 120
    while server.state not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.state == "ready", server.logs.text_tail()
    assert [s.name for s in core.manager.servers()] == ["default"]  # the bad entry started nothing
