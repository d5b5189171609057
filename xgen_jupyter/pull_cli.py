"""``xgen pull REPO[:QUANT or FILE]``: download a model with a progress bar on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .core.models.pull_text import done_text, progress_line


def add_parser(sub: Any) -> None:
    p = sub.add_parser("pull", help="download a GGUF (or an HF folder for vLLM) from Hugging Face or HF_ENDPOINT")
    p.add_argument("spec", metavar="REPO[:QUANT or FILE]",
                   help="e.g. unsloth/gemma-3-270m-it-GGUF (Q4_K_M), ...:Q8_0, or ...:a-file.gguf")  # fmt: skip
    p.add_argument("--dir", default=None, help="download here (default: the first --model-dir)")
    p.add_argument("--shared-dir", default=None, help="the box's shared dir: pull into <it>/models when a model dir")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_pull)


def cmd_pull(ns: argparse.Namespace) -> int:
    from .core.models.pull import PullProgress, pull

    tty = sys.stderr.isatty()
    width = [0]

    def show(p: PullProgress) -> None:
        line = progress_line(p.to_dict())
        if tty:
            sys.stderr.write("\r" + line.ljust(width[0]))
            width[0] = len(line)
        elif p.state in ("starting", "verifying", "done"):
            sys.stderr.write(line + "\n")  # a log file gets the milestones, not a line per chunk
        sys.stderr.flush()

    try:
        result = pull(ns.spec, model_dirs=list(ns.model_dir or []), shared_dir=ns.shared_dir, dest=ns.dir,
                      on_progress=show, min_interval=0.2 if tty else 0.0)  # fmt: skip
    except KeyboardInterrupt:
        sys.stderr.write(f"\ninterrupted: `xgen pull {ns.spec}` again continues where this stopped\n")
        raise
    finally:
        if tty and width[0]:
            sys.stderr.write("\n")
    print(json.dumps(result, indent=2) if ns.json else done_text(result))
    return 0
