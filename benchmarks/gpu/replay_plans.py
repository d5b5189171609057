"""Replay issue 13's H200 cells through today's planner, offline, and set each plan beside what the same
placement measured on the card in earlier runs (benchmarks/results/plans/run*-plans.json).

The three shapes are written as their GGUF headers only (the tensor data a sparse hole of the same
size): make_shapes.py / make_model.py run with random blocks replaced by unallocated arrays, so
the planner reads the very tensor list the card ran. Each cell is planned on an H200 report with the
free MiB NVML gave in that cell and the host bandwidth xgen had cached (run 4), n_ctx 8192, one slot,
as plans_measure.py asks. A replayed plan is a prediction; the speeds shown are earlier
measurements of the identical placement (same -ngl, --n-cpu-moe, -ot), and "same run" ratios compare
it with llama-server's defaults and the hand plans of one run (rows disturbed while they ran left
out: DISTURBED). Nothing here ran on a GPU.

    python benchmarks/gpu/replay_plans.py [--out benchmarks/results/plans-replay.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFWriter
from gguf.gguf_writer import WriterState

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_model
import make_shapes

from xgen_jupyter.core.adapters import registry
from xgen_jupyter.core.hardware.types import CPUInfo, GPUInfo, HardwareReport
from xgen_jupyter.core.models.inspect import inspect_model
from xgen_jupyter.core.planning.backend import BackendInstall
from xgen_jupyter.core.planning.context import PlanInputs
from xgen_jupyter.core.planning.planner import plan
from xgen_jupyter.core.planning.request import parse_request

MiB, GiB = 1024**2, 1024**3
RESULTS = Path(__file__).resolve().parents[1] / "results"
#: llama-server b11434's placement flags (its --help, read on the card in runs 1-4).
FLAGS = frozenset({"--n-cpu-moe", "--override-tensor", "--fit", "--split-mode=tensor", "--split-mode=layer"})
CPU = CPUInfo(16, 16, 125 * GiB, 120 * GiB, "Intel(R) Xeon(R) Processor")


def _sparse_tensors(self: GGUFWriter, *, progress: bool = False) -> None:
    """GGUFWriter.write_tensors_to_file, with each tensor's bytes left as a hole."""
    self.write_ti_data_to_file()
    assert self.fout is not None
    for fout, tensors in zip(self.fout, self.tensors, strict=True):
        self.write_padding(fout, fout.tell())
        fout.truncate(fout.tell() + sum(GGUFWriter.ggml_pad(ti.nbytes, self.data_alignment) for ti in tensors.values()))
    self.state = WriterState.WEIGHTS


def _no_blocks(rng: Any, rows: int, cols: int, qtype: str) -> np.ndarray:
    size, per, _ = make_model.BLOCKS[qtype]
    return np.empty((rows, cols // per * size), dtype=np.uint8)  # never touched: no memory taken


@contextlib.contextmanager
def headers_only() -> Iterator[None]:
    saved = GGUFWriter.write_tensors_to_file, make_model.random_blocks, make_shapes.random_blocks
    GGUFWriter.write_tensors_to_file = _sparse_tensors  # type: ignore[method-assign]
    make_model.random_blocks = make_shapes.random_blocks = _no_blocks
    try:
        yield
    finally:
        GGUFWriter.write_tensors_to_file = saved[0]  # type: ignore[method-assign]
        make_model.random_blocks, make_shapes.random_blocks = saved[1], saved[2]


def write_shapes(folder: Path) -> dict[str, str]:
    """The three shapes as run_plans.sh writes them, headers only."""
    out = {s: folder / f"{s}.gguf" for s in ("moe", "dense", "swa")}
    with headers_only():
        make_shapes.write_moe(out["moe"])
        make_shapes.write_swa(out["swa"])
        make_model.write(out["dense"], layers=32, embd=4096, ff=14336, heads=32, kv_heads=8, vocab=128256,
                         ctx=8192, qtype="q4_k_m")  # fmt: skip
    return {k: str(v) for k, v in out.items()}


def installs() -> dict[str, BackendInstall]:
    return {
        r.id: BackendInstall(r, r.id == "llama-server-cuda", "/opt/llama-server" if r.id == "llama-server-cuda" else None,
                             flags=FLAGS if r.id == "llama-server-cuda" else frozenset())
        for r in registry.rows()
    }  # fmt: skip


def placement(argv: list[str], n_layer: int) -> tuple[str, int, str]:
    """(-ngl, --n-cpu-moe, -ot) of an engine's argv; -ngl beyond the blocks is 'all'."""
    def arg(*names: str) -> str | None:
        for i, a in enumerate(argv[:-1]):
            if a in names:
                return argv[i + 1]
        return None

    ngl = arg("-ngl", "--n-gpu-layers")
    return ("all" if ngl is None or int(ngl) > n_layer else ngl, int(arg("--n-cpu-moe") or 0),
            arg("--override-tensor", "-ot") or "")  # fmt: skip


#: A row whose per-request decode speeds differ by more than this factor was disturbed (run 4's two
#: MoE hand rows: 25..50 and 47..84 t/s; every other row of runs 1-4 is within 1.18).
DISTURBED = 1.5


def disturbed(row: dict[str, Any]) -> bool:
    d = row.get("speed", {}).get("decode_all") or [1.0]
    return max(d) / min(d) > DISTURBED


def measured(runs: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Every engine row of the given runs that served its requests undisturbed, by cell, with its run."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        d = json.loads((RESULTS / "plans" / f"run{r}-plans.json").read_text())
        for i, c in enumerate(d["cells"]):  # run 3 measured moe-6 twice: peers are of one cell's measurement
            for row in c.get("runs", []):
                if "speed" in row and not disturbed(row):
                    cells.setdefault(c["cell"], []).append({**row, "run": r, "at": (r, i), "free_mib": c["free_mib"][0]})
    return cells


def replay(paths: dict[str, str], host_bw: float, runs: list[int]) -> list[str]:
    facts = {k: inspect_model(v) for k, v in paths.items()}
    rows = ["| cell | free MiB | xgen's plan now | predicted MiB | same placement measured (run: decode / prompt t/s) "
            "| ÷ best decode, same run | ÷ best prompt, same run | ÷ fit decode, same run |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for cell, engines in measured(runs).items():
        shape = cell.split("-")[0]
        f = facts[shape]
        free = engines[0]["free_mib"]
        req = parse_request({"model": f.path, "n_ctx": 8192, "n_parallel": 1, "mlock": False})
        gpu = GPUInfo(0, "NVIDIA H200", "nvidia", 143771 * MiB, free * MiB, "sm_90", "9.0", "Hopper", source="nvml")
        p = plan(PlanInputs(HardwareReport("h200", (gpu,), CPU), f, req, installs(), "m", host_bandwidth=host_bw))
        mine = placement(list(p.argv), f.n_layer)
        assert p.memory is not None
        same = [e for e in engines if e["plan"] != "fit" and placement(e["argv"], f.n_layer) == mine]
        seen: list[str] = []
        ratios: dict[str, list[float]] = {"d": [], "p": [], "f": []}
        for e in same:
            sp = e["speed"]
            seen.append(f"{e['run']}: {sp['decode_tps']:.1f} / {sp['prompt_tps']:.0f}")
            # The comparison: llama-server's defaults and the hand plans of the same run.
            peers = [o for o in engines if o["at"] == e["at"] and o["plan"] != "xgen" and o is not e]
            if peers:
                ratios["d"].append(sp["decode_tps"] / max(o["speed"]["decode_tps"] for o in [*peers, e]))
                ratios["p"].append(sp["prompt_tps"] / max(o["speed"]["prompt_tps"] for o in [*peers, e]))
            fit = [o for o in peers if o["plan"] == "fit"]
            if fit:
                ratios["f"].append(sp["decode_tps"] / fit[0]["speed"]["decode_tps"])
        rows.append(f"| {cell} | {free} | `{_flags(mine)}` | {p.memory.gpu_total / MiB:.0f} | {'; '.join(seen) or 'not measured'} "
                    f"| {_span(ratios['d'])} | {_span(ratios['p'])} | {_span(ratios['f'])} |")  # fmt: skip
    return rows


def _flags(place: tuple[str, int, str]) -> str:
    ngl, k, ot = place
    out = f"-ngl {ngl}" if ngl != "all" else "all layers"
    return out + (f" --n-cpu-moe {k}" if k else "") + (f" -ot {ot}" if ot else "")


def _span(xs: list[float]) -> str:
    if not xs:
        return ""
    lo, hi, med = min(xs), max(xs), statistics.median(xs)
    return f"{med:.2f}" if len(xs) == 1 else f"{med:.2f} ({lo:.2f}..{hi:.2f}, n={len(xs)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=RESULTS / "plans-replay.md")
    p.add_argument("--runs", default="1,2,3,4")
    a = p.parse_args()
    runs = [int(x) for x in a.runs.split(",")]
    host = json.loads((RESULTS / "plans" / f"run{max(runs)}-plans.json").read_text())["host_bandwidth"]["bytes_per_s"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = replay(write_shapes(Path(tmp)), host, runs)
    table = "\n".join(rows)
    print(table)
    a.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
