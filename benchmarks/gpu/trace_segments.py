"""Where a proxied request's time goes: client samples (proxy_decode.py's JSON) lined up with the
server-side trace lines a patched tree writes (``key=unix_time`` pairs per request: start, prep0,
post, send, headers, in, out, in, out, ...). Prints the median of each segment in ms.

    python benchmarks/gpu/trace_segments.py SAMPLES.json TRACE.txt
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    res = json.loads(Path(sys.argv[1]).read_text())
    traces = []
    for line in Path(sys.argv[2]).read_text().splitlines():
        pairs = [kv.split("=") for kv in line.split()]
        traces.append([(k, float(v)) for k, v in pairs])
    proxied = res["samples"]["xgen proxy"]
    direct = res["samples"]["direct"]
    segs: dict[str, list[float]] = {}
    for smp in proxied:
        # the trace of this sample: the one that started after the client sent and before its first token
        t0, first = smp["wall0"], smp["wall0"] + smp["ttft_s"]
        tr = next((t for t in traces if t0 <= t[0][1] <= first), None)
        if tr is None:
            continue
        # up to the last chunk relayed before the client had its first token (numbered: in1, out1, ...)
        marks, seen = [("client sends", t0)], {"in": 0, "out": 0}
        if smp.get("sent_s") is not None:
            marks.append(("client sent", t0 + smp["sent_s"]))
        for k, v in tr:
            if v > first:
                break
            if k in seen:
                seen[k] += 1
                k = f"{k}{seen[k]}"
            marks.append((k, v))
        marks.append(("client has token", first))
        for (a, ta), (b, tb) in itertools.pairwise(marks):
            segs.setdefault(f"{a} -> {b}", []).append((tb - ta) * 1e3)
    print(f"{len(next(iter(segs.values()), []))} of {len(proxied)} proxied samples traced; medians in ms")
    for seg, ms in segs.items():
        print(f"  {seg:28s} {statistics.median(ms):8.3f}")
    for name, s in (("direct", direct), ("xgen proxy", proxied)):
        print(f"{name}: request sent {statistics.median(x.get('sent_s') or 0 for x in s) * 1e3:.3f} ms, "
              f"headers {statistics.median(x['headers_s'] for x in s) * 1e3:.3f} ms, "
              f"first token {statistics.median(x['ttft_s'] for x in s) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
