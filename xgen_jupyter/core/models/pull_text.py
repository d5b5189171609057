"""One line of text for a pull's progress (the CLI and the notebook draw the same bar)."""

from __future__ import annotations

from typing import Any

_WIDTH = 30


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def progress_line(p: dict[str, Any]) -> str:
    """``file [#####.....]  45.2%  1.2 GB / 2.5 GB  35.1 MB/s  ETA 0:37`` from PullProgress.to_dict()."""
    total, done, rate = p.get("total") or 0, p.get("done") or 0, p.get("rate") or 0.0
    frac = min(done / total, 1.0) if total else 1.0
    bar = "#" * int(frac * _WIDTH)
    line = f"{p.get('file', '')} [{bar:.<{_WIDTH}}] {frac * 100:5.1f}%  {size_text(done)} / {size_text(total)}"
    state = p.get("state")
    if state == "waiting":
        return line + "  (another pull is downloading it: waiting)"
    if state == "verifying":
        return line + "  checking sha256"
    if state == "downloading" and rate > 0:
        left = int((total - done) / rate)
        line += f"  {size_text(rate)}/s  ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
    return line


def done_text(result: dict[str, Any]) -> str:
    return (f"pulled {result['repo']} -> {result['path']} ({size_text(result['size'])}); "
            f"load it with: {result['name']}")  # fmt: skip
