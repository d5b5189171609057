"""Several Jupyter servers opening one fresh registry at the same moment all get it."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from xgen_jupyter.core.box.db import Database


def _open(folder: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    try:
        Database(Path(folder))
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(repr(exc))


def test_fresh_registry_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for round_ in range(15):
        folder = tmp_path / f"shared{round_}"
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=_open, args=(str(folder), barrier, errors)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
