"""``python -m xgen_jupyter.boxd``: the same as ``xgen box``."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import XGenError
from .main import add_args, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xgen box", description="Run the box service (docs/shared-box.md).")
    p.add_argument("--model-dir", action="append", help="allowed model folder (repeatable)")
    add_args(p)
    ns = p.parse_args(argv)
    try:
        return run(ns, list(ns.model_dir or []))
    except XGenError as exc:
        print(f"xgen box: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
