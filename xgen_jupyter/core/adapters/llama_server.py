"""llama.cpp's ``llama-server``, in its Vulkan, ROCm, CUDA and CPU builds."""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from .. import chat_templates
from ..config import CoreConfig
from ..planning.backend import BackendInstall, BackendRow, EngineSettings, EngineTraits
from . import probe
from .base import BackendAdapter, Progress

_DEVICE_ENV = {
    # Which devices a build may use; the planner passes the chosen GPU indices.
    "cuda": "CUDA_VISIBLE_DEVICES",
    "rocm": "HIP_VISIBLE_DEVICES",
    "vulkan": "GGML_VK_VISIBLE_DEVICES",
}
# xgen's neutral chat-format names -> llama-server's built-in template names.
_CHAT_TEMPLATES = {"mistral": "mistral-v7"}
_TENSORS = re.compile(r"load_tensors: .*(?:offloaded|offloading) (\d+)/(\d+) layers")


class LlamaServerAdapter(BackendAdapter):
    engine = "llama-server"
    formats = ("gguf",)
    traits = EngineTraits(
        ggml=True,
        slots_share_ctx=True,  # -c is divided among --parallel slots (measured on an H100)
        parallel_slots=True,
        head_first=True,  # b11434, what xgen builds, offloads the output head first
        flash_attn_auto_on=frozenset({"cuda", "cpu"}),  # where the backend has kernels for it
        gpu_split=True,
        auto_fit=True,
        jinja=True,
        reranking=True,
    )
    stats_paths = {"slots": "/slots", "metrics": "/metrics"}
    key_env_var = "LLAMA_API_KEY"

    @classmethod
    def discover(cls, rows: Sequence[BackendRow], config: CoreConfig) -> dict[str, BackendInstall]:
        """Per backend: the configured binary, one on PATH under the backend's id, or xgen's build;
        then a plain ``llama-server`` on PATH serves the first backend of the device it was built for."""
        found: dict[str, BackendInstall] = {}
        for row in rows:
            built = Path(config.engines_dir) / row.id / "bin" / "llama-server"
            places = (
                (config.binaries.get(row.id), "config"),
                (shutil.which(row.id), "PATH"),
                (str(built), "engines_dir"),
            )
            for path, source in places:
                if path and probe.executable(path):
                    found[row.id] = BackendInstall(row, True, path, source, flags=probe.help_flags(path))
                    break
        plain = shutil.which("llama-server")
        if plain:
            device = probe.llama_device(plain)
            first = next((r for r in rows if r.device == device), None)
            if first is not None and first.id not in found:
                found[first.id] = BackendInstall(
                    first, True, plain, "PATH (llama-server)", flags=probe.help_flags(plain)
                )
        return found

    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        s = settings
        cmd = [
            self.executable,
            "--model", model_path,
            "--alias", alias,
            "--ctx-size", str(s.n_ctx),
            "--batch-size", str(s.n_batch),
            "--ubatch-size", str(s.n_ubatch),
            "--threads", str(s.n_threads),
            "--parallel", str(s.n_parallel),
            "--n-gpu-layers", str(s.n_gpu_layers),
            "--flash-attn", s.flash_attn,
        ]  # fmt: skip
        if s.fit_off:
            cmd += ["--fit", "off"]
        if s.main_gpu is not None:
            cmd += ["--main-gpu", str(s.main_gpu)]
        if s.split_mode:
            cmd += ["--split-mode", s.split_mode]
        if s.tensor_split:
            cmd += ["--tensor-split", ",".join(f"{x:g}" for x in s.tensor_split)]
        if s.cache_type_k:
            cmd += ["--cache-type-k", s.cache_type_k]
        if s.cache_type_v:
            cmd += ["--cache-type-v", s.cache_type_v]
        if s.n_cpu_moe:
            cmd += ["--n-cpu-moe", str(s.n_cpu_moe)]
        if s.override_tensor:
            cmd += ["--override-tensor", s.override_tensor]
        if s.mlock:
            # Builds from late 2026 replaced --mlock with --load-mode (and reject --mlock).
            cmd += ["--load-mode", "mmap+mlock"] if "--load-mode" in self.flags else ["--mlock"]
        cmd.append("--cont-batching" if s.cont_batching else "--no-cont-batching")
        copy = chat_templates.path(s.chat_format) if s.chat_format and s.jinja else None
        if copy:
            # The format as a Jinja file (same prompt as the built-in one): tools need --jinja.
            cmd += ["--jinja", "--chat-template-file", copy]
        elif s.chat_format:
            # A built-in template by name; with Jinja on (the default since late 2026) the name
            # would be read as a literal Jinja template, and the prompt would become "gemma".
            if "--no-jinja" in self.flags:
                cmd.append("--no-jinja")
            cmd += ["--chat-template", _CHAT_TEMPLATES.get(s.chat_format, s.chat_format)]
        elif s.jinja:
            cmd.append("--jinja")
        elif "--no-jinja" in self.flags and not (s.embedding or s.rerank):
            cmd.append("--no-jinja")  # asked for (jinja: false): these builds turn Jinja on by default
        if s.rerank:
            cmd.append("--reranking")  # rank pooling, embeddings on: /v1/rerank
        elif s.embedding:
            cmd += ["--embedding", "--pooling", "mean"]
        # /metrics and /slots let the status view show throughput and slot use.
        cmd += ["--metrics", "--slots"]
        if "--log-verbosity" in self.flags:
            # Level 4 logs the device used, the layers offloaded and every buffer's size (what a
            # user watching the live log wants) plus ~40 lines a request; 3 shows none of it.
            cmd += ["--log-verbosity", "4"]
        return cmd

    def bind_args(self, host: str, port: int) -> list[str]:
        return ["--host", host, "--port", str(port)]

    def env(self, settings: EngineSettings, gpus: tuple[int, ...]) -> dict[str, str]:
        var = _DEVICE_ENV.get(self.device)
        if not (var and gpus):
            return {}
        env = {var: ",".join(str(g) for g in gpus)}
        if self.device == "cuda":
            # Our indices are NVML's, in PCI bus order; CUDA's default order is fastest first.
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env

    def progress(self, line: str) -> Progress | None:
        if "loading model" in line:
            return Progress(0.1, "reading the model")
        m = _TENSORS.search(line)
        if m:
            return Progress(0.5, f"offloaded {m.group(1)}/{m.group(2)} layers")
        if "llama_context:" in line and "KV" in line:
            return Progress(0.7, "allocating the KV cache")
        if "warming up" in line:
            return Progress(0.9, "warming up")
        return None
