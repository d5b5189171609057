"""Byte sizes as people read and write them: one GiB, one "1.5 GiB", one parser of "40GiB"."""

from __future__ import annotations

import re
from typing import Any

MiB = 1024**2
GiB = 1024**3

#: Units a size may be written in: k/M/G/T are decimal (as disks say), KiB/MiB/GiB/TiB binary.
SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": MiB,
              "g": 1000**3, "gb": 1000**3, "gib": GiB, "t": 1000**4, "tb": 1000**4, "tib": 1024**4}  # fmt: skip


def gib(n: float | None, digits: int = 1, unit: bool = True) -> str:
    """Bytes as "1.5 GiB" (``unit=False``: "1.5"); "?" for unknown."""
    if n is None:
        return "?"
    return f"{n / GiB:.{digits}f}" + (" GiB" if unit else "")


def parse_size(value: Any) -> int | None:
    """Bytes from a whole number of bytes or text such as "40GiB", "1.5 GB", "512MiB"; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in SIZE_UNITS:
        return None
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2).lower()])
