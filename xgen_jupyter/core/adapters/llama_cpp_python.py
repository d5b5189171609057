"""llama-cpp-python's OpenAI server: the CPU fallback that always installs with pip."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..config import CoreConfig
from ..planning.backend import BackendInstall, BackendRow, EngineSettings, EngineTraits
from . import probe
from .base import BackendAdapter, Progress

# xgen's neutral chat-format names → llama-cpp-python's registry names.
_CHAT_FORMATS = {"llama3": "llama-3", "llama2": "llama-2", "mistral": "mistral-instruct", "phi3": "chatml"}


class LlamaCppPythonAdapter(BackendAdapter):
    engine = "llama-cpp-python"
    formats = ("gguf",)
    # An older llama.cpp: one slot, the output head offloaded last, flash attention only when asked.
    traits = EngineTraits(ggml=True)
    # llama_cpp.server has no /health; /v1/models answers once the model is loaded.
    health_path = "/v1/models"
    health_needs_key = True
    key_env_var = "API_KEY"  # pydantic-settings: ServerSettings.api_key

    @classmethod
    def discover(cls, rows: Sequence[BackendRow], config: CoreConfig) -> dict[str, BackendInstall]:
        """The server runs in xgen's own interpreter when llama_cpp and uvicorn import there."""
        if not (probe.has_module("llama_cpp") and probe.has_module("uvicorn")):
            return {}
        return {row.id: BackendInstall(row, True, sys.executable, "python") for row in rows}

    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        s = settings
        cmd = [
            # Our thin entry point runs llama_cpp.server, adding a pooling option it lacks.
            self.executable, "-m", "xgen_jupyter.core.adapters.llama_cpp_entry",
            "--model", model_path,
            "--model_alias", alias,
            "--n_ctx", str(s.n_ctx),
            "--n_batch", str(s.n_batch),
            "--n_ubatch", str(s.n_ubatch),
            "--n_threads", str(s.n_threads),
            "--n_threads_batch", str(s.n_threads),
            "--n_gpu_layers", str(s.n_gpu_layers),
        ]  # fmt: skip
        if s.flash_attn == "on":
            cmd += ["--flash_attn", "true"]
        if s.mlock:
            cmd += ["--use_mlock", "true"]
        if s.chat_format:
            cmd += ["--chat_format", _CHAT_FORMATS.get(s.chat_format, s.chat_format)]
        if s.embedding:
            cmd += ["--embedding", "true", "--xgen-pooling", "mean"]
        return cmd

    def bind_args(self, host: str, port: int) -> list[str]:
        return ["--host", host, "--port", str(port)]

    def progress(self, line: str) -> Progress | None:
        if "llama_model_loader" in line:
            return Progress(0.3, "reading the model")
        if "Started server process" in line:
            return Progress(0.8, "starting the HTTP server")
        return None
