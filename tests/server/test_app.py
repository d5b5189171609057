"""The extension's wiring: c.XGen config, discovery, jupyter-config, openapi.yaml vs routes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

import xgen_jupyter
from xgen_jupyter.server.app import XGen
from xgen_jupyter.server.routes import ROUTES, handlers

REPO = Path(__file__).resolve().parents[2]


def test_c_xgen_config_reaches_the_core(
    jp_serverapp: Any, jp_server_config: dict[str, Any], model_dir: Path
) -> None:
    core = jp_serverapp.web_app.settings["xgen_core"]
    assert core.config.model_dirs == [str(model_dir)]
    assert str(core.config.state_dir) == jp_server_config["XGen"]["state_dir"]
    assert core.config.ready_timeout == 120.0
    assert core.config.host == "127.0.0.1"  # the default: engines never bind all interfaces


def test_every_trait_is_configurable_and_documented() -> None:
    own = XGen.class_own_traits()
    assert {"model_dirs", "allowed_backends", "idle_ttl", "host", "shared_dir", "default_n_ctx"} <= set(own)
    for name, trait in own.items():
        assert trait.metadata.get("config") is True, name
        assert trait.help and len(trait.help) > 15, name


def test_extension_points_and_lazy_import() -> None:
    points = xgen_jupyter._jupyter_server_extension_points()
    assert points == [{"module": "xgen_jupyter.server.app", "app": XGen}]
    assert XGen.name == "xgen"
    assert xgen_jupyter._jupyter_labextension_paths() == [{"src": "labextension", "dest": "xgen-jupyter"}]
    code = "import sys, xgen_jupyter, xgen_jupyter.core.service; sys.exit('jupyter_server' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


def test_jupyter_config_enables_the_extension() -> None:
    data = json.loads((REPO / "jupyter-config/server-config/xgen_jupyter.json").read_text())
    assert data == {"ServerApp": {"jpserver_extensions": {"xgen_jupyter": True}}}


def test_openapi_matches_the_routes() -> None:
    spec = yaml.safe_load((REPO / "xgen_jupyter/server/openapi.yaml").read_text())
    documented = set(spec["paths"])
    registered = {"/" + template for template, _, _ in ROUTES}
    assert registered == documented
    for template, handler, _ in ROUTES:
        methods = {
            m
            for m in ("get", "post", "delete", "put", "patch")
            if m in vars(handler)
            or any(m in vars(base) for base in handler.__mro__ if base.__module__.startswith("xgen_jupyter"))
        }
        assert methods == set(spec["paths"]["/" + template]) - {"parameters"}, template
    # the tornado patterns are the templates with a named group per placeholder
    for (pattern, _, _), (template, _, _) in zip(handlers(), ROUTES, strict=True):
        example = re.sub(r"\{\w+\}", "abc", template)
        assert re.fullmatch(pattern, example), (pattern, example)
