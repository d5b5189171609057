"""``python -m xgen_jupyter.core.builds install|list`` with a progress bar on the terminal."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from xgen_jupyter.core.errors import XGenError

from .backends import BACKENDS
from .install import default_engines_dir, install_engine, installed_engines, read_build_info


class TerminalProgress:
    """A one-line bar redrawn in place on a terminal; plain lines (each phase, every 5%) in a log."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.phase = ""
        self.last_pct = -5
        self.start = time.monotonic()

    def __call__(self, message: str, fraction: float | None) -> None:
        elapsed = time.monotonic() - self.start
        phase = message.split()[0] if fraction is not None and 0 < fraction < 1 else message
        if self.tty:
            width = shutil.get_terminal_size((80, 20)).columns
            if fraction is None or fraction >= 1:  # phase lines stay readable, not squeezed beside a bar
                line = f"{message}  ({elapsed:.0f} s)"
            else:
                bar = "#" * int(fraction * 30)
                line = f"[{bar:<30}] {fraction * 100:5.1f}% {elapsed:5.0f} s  {message}"
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            if fraction is None or fraction >= 1:
                self.stream.write("\n")
        elif fraction is None or fraction >= 1 or phase != self.phase or fraction * 100 >= self.last_pct + 5:
            pct = "" if fraction is None else f"{fraction * 100:3.0f}% "
            self.stream.write(f"[{elapsed:5.0f} s] {pct}{message}\n")
            if fraction is not None:
                self.last_pct = int(fraction * 100) // 5 * 5
        self.phase = phase
        self.stream.flush()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m xgen_jupyter.core.builds", description=__doc__)
    p.add_argument("--engines-dir", type=Path, default=None, help="default: $XGEN_ENGINES_DIR or ~/.cache/xgen/engines")
    sub = p.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="build engines (skips finished builds unless --force)")
    inst.add_argument("backends", nargs="+", metavar="BACKEND", help=", ".join(BACKENDS))
    inst.add_argument("--force", action="store_true", help="rebuild even if a finished build exists")
    inst.add_argument("--jobs", "-j", type=int, default=None, help="parallel compile jobs (default: all cores)")
    sub.add_parser("list", help="show finished builds")
    args = p.parse_args(argv)
    root = args.engines_dir or default_engines_dir()
    try:
        if args.command == "list":
            for name, binary in installed_engines(root).items():
                info = read_build_info(root, name)
                print(f"{name:22} {binary}  (llama.cpp {info.get('llama_cpp_version')}, "
                      f"built {info.get('built_at')} in {info.get('seconds')} s)")
            return 0
        for backend in args.backends:
            binary = install_engine(backend, engines_dir=root, jobs=args.jobs, force=args.force,
                                    progress=TerminalProgress(sys.stderr))
            print(binary)
        return 0
    except XGenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
