"""Turn cmake/ninja/make output lines into (message, fraction) progress updates."""

from __future__ import annotations

import re
from collections.abc import Callable

#: The callback install_engine reports to: a phase message and a fraction 0..1 when known.
ProgressFn = Callable[[str, "float | None"], None]

_NINJA = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")
_MAKE = re.compile(r"^\[\s*(\d{1,3})%\]\s*(.*)$")


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """(fraction, description) from a ``[123/456] ...`` (ninja) or ``[ 42%] ...`` (make) line, else None."""
    line = line.strip()
    m = _NINJA.match(line)
    if m:
        done, total = int(m.group(1)), int(m.group(2))
        if total <= 0:
            return None
        return min(done / total, 1.0), m.group(3)
    m = _MAKE.match(line)
    if m:
        return min(int(m.group(1)) / 100.0, 1.0), m.group(2)
    return None


def describe(description: str) -> str:
    """A short label for a build step: the object or target name, not the whole path."""
    words = description.split()
    if not words:
        return "compiling"
    verb = words[0].lower()
    last = words[-1].rsplit("/", 1)[-1]
    if verb == "building":
        return f"compiling {last}"
    if verb == "linking":
        return f"linking {last}"
    return description if len(description) <= 60 else description[:57] + "..."


class BuildProgress:
    """Stateful parser for one build's output.

    Not every ``[n/m]`` line belongs to the build being tracked: ninja's regeneration step prints
    ``[0/2] Re-checking globbed directories...`` first, and sub-builds (ggml's vulkan-shaders-gen
    is an ExternalProject) print their own small counters in between. The largest total seen is
    the real build; other counters are ignored, and within it the fraction never falls.
    """

    def __init__(self) -> None:
        self.total: int | None = None
        self.fraction = 0.0

    def feed(self, line: str) -> tuple[str, float] | None:
        parsed = parse_progress_line(line)
        if parsed is None:
            return None
        fraction, description = parsed
        m = _NINJA.match(line.strip())
        if m:
            total = int(m.group(2))
            if self.total is None or total > self.total:
                self.total, self.fraction = total, 0.0
            elif total < self.total:
                return None
        if fraction < self.fraction:
            return None
        self.fraction = fraction
        return describe(description), fraction
