"""xgen-jupyter: serve models from Jupyter with a planner that knows the box."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    # Imported here, not at the top: the core must import without Jupyter installed.
    from .server.app import XGen

    return [{"module": "xgen_jupyter.server.app", "app": XGen}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "xgen-jupyter"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext xgen_jupyter``: register the ``%xgen`` magics (IPython imported only now)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str) -> Any:
    # Lazy: ``import xgen_jupyter`` stays light and Jupyter-free; ``xgen_jupyter.client`` loads on use.
    if name == "client":
        from .notebook.openai_client import client

        return client
    raise AttributeError(f"module 'xgen_jupyter' has no attribute {name!r}")
