"""``%xgen usage [--box] [--json]``: the box's usage books (``GET xgen/api/usage``), as a table.

Requests and tokens are what each user's own Jupyter server counted at its proxy; memory-seconds
(planned GPU and host bytes while ready) are metered by whoever holds the reservations.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

GIB = 1024**3


def render(rows: list[dict[str, Any]], scope: str = "mine") -> str:
    if not rows:
        return ("Nothing booked on this box yet." if scope == "box" else
                "Nothing booked for you yet (requests through the proxy, memory while your servers are ready).")
    head = ("user", "model", "requests", "prompt tok", "completion tok", "GPU GiB·s", "host GiB·s")
    body: list[tuple[str, ...]] = [(str(r["user"]), str(r["model"]), str(r["requests"]), str(r["prompt_tokens"]),
             str(r["completion_tokens"]), f"{r['gpu_byte_seconds'] / GIB:.1f}", f"{r['host_byte_seconds'] / GIB:.1f}")
            for r in rows]
    if len(rows) > 1:
        body.append(("total", "", *(str(sum(int(r[k]) for r in rows))
                                    for k in ("requests", "prompt_tokens", "completion_tokens")),
                     f"{sum(r['gpu_byte_seconds'] for r in rows) / GIB:.1f}",
                     f"{sum(r['host_byte_seconds'] for r in rows) / GIB:.1f}"))
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (head, *body)]
    return "\n".join(lines) + ("\n(kept in the box registry across restarts; memory: planned bytes while ready, "
                               "to the server's owner)")


def run_usage(client: Any, ns: argparse.Namespace) -> None:
    scope = "box" if ns.box else "mine"
    rows = client.usage(scope)
    print(json.dumps(rows, indent=1) if ns.json else render(rows, scope))
