"""The real Jupyter AI 3 (Jupyternaut, LiteLLM) in a real Jupyter server beside xgen: its config
points at the proxy with a key xgen made for it (never the Jupyter token), and a chat request made
the way Jupyternaut makes it (its ChatLiteLLM built from the custom model's LiteLLM id and params)
streams an answer from the real default model through that key. A restart revokes the old key.

Jupyter AI lives in .venv-ai (scripts/setup-ai-venv.sh): the Jupyter server and the client run there.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO
from tests.core.box.jupyter_proc import JupyterProc, free_port

AI_PYTHON = Path(os.environ.get("XGEN_AI_PYTHON", REPO / ".venv-ai" / "bin" / "python"))
pytestmark = pytest.mark.skipif(not AI_PYTHON.exists(), reason=f"no {AI_PYTHON}: run scripts/setup-ai-venv.sh")
XGEN_ID = "custom-xgen/openai/chat"
# Jupyternaut always sends `tools`; llama-server takes them only with --jinja, which the planner gives
# GGUFs with a chat template. The default GGUF has none: llama-cpp-python serves it here.
PRESETS = {"chat": {"model": "default", "backend": "llama-cpp-python"}}
MINE = {"id": "custom-1234/openai/gpt-x", "name": "mine", "description": None, "model_id": "openai/gpt-x",
        "params": {"temperature": 0.1}}

# What Jupyternaut does per message (jupyternaut.py: _resolve_model, then get_agent): its ChatLiteLLM
# from the custom model's LiteLLM id and params, in a LangChain agent with a tool, streamed.
CLIENT = """
import asyncio, json, sys
from jupyter_ai_jupyternaut.jupyternaut.chat_models import ChatLiteLLM
from langchain.agents import create_agent
from langchain_core.tools import tool
config = json.load(open(sys.argv[1]))
model = next(m for m in config["custom_models"] if m["id"] == sys.argv[2])
@tool
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    return a + b
async def main():
    chat = ChatLiteLLM(**model["params"], model=model["model_id"], streaming=True)
    agent = create_agent(chat, system_prompt="You are a helpful assistant.", tools=[add])
    chunks = []
    async for message, _ in agent.astream({"messages": [{"role": "user", "content": "Name three colors."}]},
                                          stream_mode="messages"):
        chunks.append(message.content)
    print(json.dumps(chunks))
asyncio.run(main())
"""


def ai_env() -> dict[str, str]:
    # LiteLLM fetches a price list from GitHub at import unless told not to: no network in tests.
    return {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


class AIJupyter(JupyterProc):
    """A Jupyter server run by .venv-ai's Python: Jupyter AI's extensions load beside xgen's."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "ai", {"shared_dir": str(root / "shared"), "ai_chat_params": {"max_tokens": 12},
                                     "presets": PRESETS, "ai_chat_refresh": 1.0},
                         env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        # Jupyter AI's MCP server: a free port, not its fixed 3001 (nor 0: Jupyternaut connects to the number).
        self.argv = [str(AI_PYTHON), "-m", "jupyter_server", f"--MCPExtensionApp.mcp_port={free_port()}"]
        self.config_path = self.root / "data" / "jupyter_ai" / "config.json"

    def ai_config(self, key_other_than: str = "", timeout: float = 90.0) -> dict[str, Any]:
        """Jupyternaut's config once xgen wrote its entry (with a key other than ``key_other_than``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.config_path.exists():
                config = json.loads(self.config_path.read_text() or "{}")
                entry = next((m for m in config.get("custom_models", []) if m["id"] == XGEN_ID), None)
                if entry and entry["params"]["api_key"] != key_other_than:
                    return config  # type: ignore[no-any-return]
            time.sleep(0.3)
        raise AssertionError(f"xgen did not configure Jupyter AI:\n{self.log_text()[-3000:]}")


@pytest.fixture()
def jupyter(tmp_path: Path) -> Any:
    proc = AIJupyter(tmp_path)
    # The user's own custom model, there before xgen: it must survive.
    proc.config_path.parent.mkdir(parents=True)
    proc.config_path.write_text(json.dumps({"custom_models": [MINE]}))
    yield proc
    proc.stop()


def chat(config_path: Path) -> list[str]:
    out = subprocess.run([str(AI_PYTHON), "-c", CLIENT, str(config_path), XGEN_ID], env=ai_env(),
                         capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def keys(proc: JupyterProc) -> list[dict[str, Any]]:
    r = proc.api("GET", "keys")
    assert r.status_code == 200, r.text
    return r.json()["keys"]  # type: ignore[no-any-return]


def test_jupyter_ai_answers_from_the_default_model_through_a_scoped_key(jupyter: AIJupyter) -> None:
    config = jupyter.start(timeout=180).ai_config()
    entry = next(m for m in config["custom_models"] if m["id"] == XGEN_ID)
    key = entry["params"]["api_key"]
    assert entry["name"] == "xgen · chat" and entry["model_id"] == "openai/chat"
    assert [m["name"] for m in config["custom_models"]] == ["xgen · chat", "xgen · default", "mine"]
    assert entry["params"]["api_base"] == f"{jupyter.base}/xgen/v1"
    assert entry["params"]["max_tokens"] == 12  # c.XGen.ai_chat_params
    assert key.startswith("xgen-") and jupyter.token not in jupyter.config_path.read_text()
    assert stat.S_IMODE(jupyter.config_path.stat().st_mode) == 0o600
    assert MINE in config["custom_models"]  # the user's own model stays
    assert config["model_provider_id"] == "openai/chat" and config["fields"]["openai/chat"]["api_key"] == key
    (made,) = keys(jupyter)
    assert made["name"] == "jupyter-ai" and made["models"] is None and made["completion_tokens"] == 0

    # The key opens xgen/v1 and nothing else.
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{jupyter.base}/xgen/v1/models", headers=bearer, trust_env=False).status_code == 200
    for path in ("api/contents", "xgen/api/keys", "api/kernels"):
        assert httpx.get(f"{jupyter.base}/{path}", headers=bearer, trust_env=False).status_code in (401, 403), path

    chunks = chat(jupyter.config_path)
    assert "".join(chunks).strip(), chunks  # the default model answered (it loads on this first request)
    assert len([c for c in chunks if c]) > 1  # streamed, not one block
    (used,) = keys(jupyter)
    # Counted on Jupyter AI's key: the GET xgen/v1/models above and the chat request.
    assert used["requests"] == made["requests"] + 2 and used["last_used"] is not None

    # A model added later (a preset in the shared folder) shows up without a restart, same key.
    (jupyter.root.parent / "shared" / "presets.json").write_text(json.dumps({"later": {"model": "default"}}))
    deadline = time.monotonic() + 30
    while not (later := [m for m in json.loads(jupyter.config_path.read_text())["custom_models"]
                         if m["name"] == "xgen · later"]):
        assert time.monotonic() < deadline, jupyter.log_text()[-2000:]
        time.sleep(0.3)
    (later,) = later
    assert later["params"]["api_key"] == key

    # A restart makes a new key and revokes the old one at once.
    jupyter.stop()
    jupyter.start(timeout=180)
    config = jupyter.ai_config(key_other_than=key)
    new_key = next(m for m in config["custom_models"] if m["id"] == XGEN_ID)["params"]["api_key"]
    assert httpx.get(f"{jupyter.base}/xgen/v1/models", headers=bearer, trust_env=False).status_code == 401
    r = httpx.get(f"{jupyter.base}/xgen/v1/models", headers={"Authorization": f"Bearer {new_key}"}, trust_env=False)
    assert r.status_code == 200 and "chat" in r.text
    assert [k["name"] for k in keys(jupyter)] == ["jupyter-ai"]
    assert MINE in config["custom_models"] and config["fields"]["openai/chat"]["api_key"] == new_key
    log = jupyter.log_text()  # both starts and the chat, LiteLLM's and Jupyter AI's lines included
    assert key not in log and new_key not in log


def test_ai_chat_off_writes_nothing_and_makes_no_key(jupyter: AIJupyter, tmp_path: Path) -> None:
    cfg = jupyter.root / "config" / "jupyter_server_config.json"
    data = json.loads(cfg.read_text())
    data["XGen"]["ai_chat"] = False
    cfg.write_text(json.dumps(data))
    jupyter.start(timeout=180)
    time.sleep(3)  # the start hook would have run by now (it runs right after the server listens)
    assert "Jupyter AI's chat offers" not in jupyter.log_text()
    assert keys(jupyter) == []
    assert not any(m["id"].startswith("custom-xgen/") for m in json.loads(jupyter.config_path.read_text())
                   .get("custom_models", []))
