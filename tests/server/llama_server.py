"""The llama-server CPU build for tests that run it behind a real Jupyter server: where it is (read
at import: the Jupyter fixtures give the server a HOME of its own) and the mark that skips without it."""

from __future__ import annotations

from typing import Any

import pytest

from xgen_jupyter.core.builds.install import installed_engines
from xgen_jupyter.core.config import default_engines_dir

ENGINES_DIR = default_engines_dir()
needs_llama_server = pytest.mark.skipif("llama-server-cpu" not in installed_engines(ENGINES_DIR),
                                        reason="llama-server-cpu not built: run scripts/ci-engines.sh")


def llama_server_only(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (jp_server_config) with the built engines and llama-server CPU as the only backend."""
    config["XGen"]["engines_dir"] = str(ENGINES_DIR)
    config["XGen"]["allowed_backends"] = ["llama-server-cpu"]
    return config
