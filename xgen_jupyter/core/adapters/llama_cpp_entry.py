"""Entry point for llama-cpp-python's server that can set the embedding pooling.

llama_cpp.server exposes no pooling option, and a chat model's GGUF (the default gemma)
declares none, so embeddings come back per token. ``--xgen-pooling mean`` makes every
Llama the server creates pool, like llama-server's ``--pooling mean``.
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3}


def _set_default_pooling(kind: int) -> None:
    import llama_cpp

    original = llama_cpp.Llama.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("pooling_type", kind)
        original(self, *args, **kwargs)

    llama_cpp.Llama.__init__ = init  # type: ignore[method-assign]


def main() -> None:
    argv = sys.argv[1:]
    if "--xgen-pooling" in argv:
        i = argv.index("--xgen-pooling")
        _set_default_pooling(POOLING[argv[i + 1]])
        del argv[i : i + 2]
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
