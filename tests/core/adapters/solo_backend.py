"""A backend added from outside xgen's source: this one adapter module plus one registry row.

``solo`` runs llama.cpp's llama-server (the same binary as ``llama-server-cpu``) without flash
attention and without the Jinja template engine: other traits, so other plans (and other memory
estimates), and an id without a dash.
"""

from __future__ import annotations

from dataclasses import replace

from xgen_jupyter.core.adapters import registry
from xgen_jupyter.core.adapters.llama_server import LlamaServerAdapter
from xgen_jupyter.core.planning.backend import BackendRow, EngineSettings

SOLO = "solo"


class SoloServerAdapter(LlamaServerAdapter):
    traits = replace(LlamaServerAdapter.traits, jinja=False, flash_attn_auto_on=frozenset())

    def argv(self, settings: EngineSettings, model_path: str, *, alias: str) -> list[str]:
        if settings.flash_attn == "auto":  # what its traits tell the planner: auto means off here
            settings = replace(settings, flash_attn="off")
        cmd = super().argv(settings, model_path, alias=alias)
        # The GGUF's template through llama.cpp's built-in detection, never its Jinja engine
        # (builds from late 2026 turn Jinja on unless told --no-jinja).
        if "--no-jinja" in self.flags and "--no-jinja" not in cmd:
            cmd.append("--no-jinja")
        return cmd


def register_solo() -> BackendRow:
    """The row: after llama-server's CPU build and before llama-cpp-python on a box without GPUs."""
    return registry.register(
        SOLO,
        SoloServerAdapter,
        device="cpu",
        order={"cpu": 0.5},
        install_hint="put llama-server on PATH as `solo`",
    )
