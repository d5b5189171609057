"""Device-to-device copy bandwidth (bytes read + written per second), the ceiling for decode.

    python benchmarks/gpu/bandwidth.py OUT.json
"""

from __future__ import annotations

import json
import statistics
import sys

import torch


def main() -> None:
    n = 4 * 1024**3  # 4 GiB source, 4 GiB destination: far past the 50 MB L2
    src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(20):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        dst.copy_(src)
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    assert torch.equal(dst[:1 << 20], src[:1 << 20])
    t = statistics.median(times)
    res = {"device": torch.cuda.get_device_name(0), "bytes_copied": n, "median_s": t,
           "read_plus_write_TBps": 2 * n / t / 1e12, "torch": torch.__version__}
    print(json.dumps(res))
    with open(sys.argv[1], "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
