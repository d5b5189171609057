"""Events: what a supervisor tells its subscribers (the websockets, the box registry, the panels)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """A state change, loading progress or log line of one server."""

    kind: str  # state | progress | log
    server: str
    data: dict[str, Any]
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "server": self.server, "data": self.data, "time": self.time}


Listener = Callable[[Event], None]
