"""``%xgen usage``: what each user asked of each model through the Jupyter server's proxy, read from
its ``xgen/metrics`` (Prometheus text) and shown as a table."""

from __future__ import annotations

import argparse
import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: Prometheus sample name -> column.
COLUMNS = {
    "xgen_requests_total": "requests",
    "xgen_prompt_tokens_total": "prompt_tokens",
    "xgen_completion_tokens_total": "completion_tokens",
    "xgen_gpu_memory_byte_seconds_total": "gpu_gib_s",
    "xgen_host_memory_byte_seconds_total": "host_gib_s",
}


def rows_from_metrics(text: str) -> list[dict[str, Any]]:
    """One row per (user, model) from the ``xgen/metrics`` exposition."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            col = COLUMNS.get(s.name)
            if col is None:
                continue
            key = (s.labels.get("user", ""), s.labels.get("model", ""))
            row = rows.setdefault(key, {"user": key[0], "model": key[1], **{c: 0 for c in COLUMNS.values()}})
            row[col] = s.value / 1024**3 if col.endswith("gib_s") else int(s.value)
    return [rows[k] for k in sorted(rows)]


def render(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No requests through this Jupyter server's proxy yet."
    head = ("user", "model", "requests", "prompt tok", "completion tok", "GPU GiB·s", "host GiB·s")
    body = [(r["user"], r["model"], str(r["requests"]), str(r["prompt_tokens"]), str(r["completion_tokens"]),
             f"{r['gpu_gib_s']:.1f}", f"{r['host_gib_s']:.1f}") for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (head, *body)]
    return "\n".join(lines) + "\n(since this Jupyter server started; memory: planned bytes while ready, to the owner)"


def run_usage(client: Any, ns: argparse.Namespace) -> None:
    rows = client.usage()
    print(json.dumps(rows, indent=1) if ns.json else render(rows))
