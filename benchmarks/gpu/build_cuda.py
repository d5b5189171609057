"""Build the CUDA llama-server with xgen's own installer, then llama-bench, llama-quantize and
llama-fit-params from the same build tree (same source, same flags).

    XGEN_ENGINES_DIR=... XGEN_LLAMA_CPP_SDIST=... python benchmarks/gpu/build_cuda.py OUT.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from xgen_jupyter.core.builds import binary_path, default_engines_dir, install_engine, read_build_info

BACKEND = "llama-server-cuda"
EXTRA = ("llama-bench", "llama-quantize", "llama-fit-params")


def main() -> None:
    out = Path(sys.argv[1])
    root = default_engines_dir()
    t0 = time.monotonic()
    last = [0.0]

    def progress(msg: str, frac: float | None) -> None:
        now = time.monotonic() - t0
        if frac is None or frac in (0.0, 1.0) or now - last[0] > 30:
            last[0] = now
            print(f"[build {now:6.1f}s] {msg} {'' if frac is None else f'{frac:.0%}'}", flush=True)

    server = install_engine(BACKEND, engines_dir=root, progress=progress)
    t_server = time.monotonic() - t0
    build_dir = root / "_build" / BACKEND
    t1 = time.monotonic()
    proc = subprocess.run(["cmake", "--build", str(build_dir), "--target", *EXTRA, "-j", str(os.cpu_count() or 1)],
                          capture_output=True, text=True)
    t_extra = time.monotonic() - t1
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
    bins = {}
    for name in EXTRA:
        src = build_dir / "bin" / name
        if src.is_file():
            dst = server.parent / name
            shutil.copy2(src, dst)
            bins[name] = str(dst)
    info = {"installer": read_build_info(root, BACKEND), "server": str(binary_path(root, BACKEND)),
            "extra_binaries": bins, "seconds_install_engine": round(t_server, 1),
            "seconds_extra_targets": round(t_extra, 1), "extra_rc": proc.returncode,
            "binary_bytes": {p.name: p.stat().st_size for p in server.parent.iterdir()}}
    out.write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
