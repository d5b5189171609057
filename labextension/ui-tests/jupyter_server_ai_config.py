"""Jupyter server for the Galata Jupyter AI spec (playwright-ai.config.js): the UI tests' settings
plus Jupyter AI, run by .venv-ai's Python. Never use in production: authentication is off."""

import os
import socket
from pathlib import Path
from tempfile import mkdtemp

exec(Path(__file__).with_name("jupyter_server_test_config.py").read_text())  # noqa: S102 - the shared settings

# Jupyter AI's config (where xgen writes its models and key) of this run only.
c.ConfigManager.config_path = os.path.join(mkdtemp(prefix="xgen-ui-jai-"), "config.json")  # type: ignore[name-defined]  # noqa: F821
# The default model is a base model that rambles: short answers keep the test quick.
c.XGen.ai_chat_params = {"max_tokens": 24}  # type: ignore[name-defined]  # noqa: F821
# Jupyter AI's MCP server listens on 3001 unless told: another run on the box may hold it. A free
# port, not 0: Jupyternaut connects to the configured number.
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    c.MCPExtensionApp.mcp_port = _s.getsockname()[1]  # type: ignore[name-defined]  # noqa: F821
# Jupyternaut always sends `tools`. llama-server takes them only with --jinja, which the planner
# gives GGUFs that carry a chat template; the default GGUF has none (it gets --no-jinja and a named
# template), so this preset serves it with llama-cpp-python, which takes tools with any chat format.
c.XGen.presets = {"chat": {"model": "default", "backend": "llama-cpp-python"}}  # type: ignore[name-defined]  # noqa: F821
