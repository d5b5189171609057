"""Compare two GGUFs' tensor types and byte sizes (our directly written Q4_K_M vs llama-quantize's).

    python benchmarks/gpu/compare_gguf.py A.gguf B.gguf   -> JSON on stdout
"""

from __future__ import annotations

import json
import os
import sys

from gguf import GGUFReader


def tensors(path: str) -> dict[str, tuple[str, int]]:
    return {t.name: (t.tensor_type.name, int(t.n_bytes)) for t in GGUFReader(path).tensors}


def main() -> None:
    a, b = sys.argv[1], sys.argv[2]
    ta, tb = tensors(a), tensors(b)
    diff = {n: {"a": ta.get(n), "b": tb.get(n)} for n in sorted(set(ta) | set(tb)) if ta.get(n) != tb.get(n)}
    print(json.dumps({"a": a, "b": b, "file_bytes": [os.path.getsize(a), os.path.getsize(b)],
                      "tensor_bytes": [sum(v[1] for v in ta.values()), sum(v[1] for v in tb.values())],
                      "n_tensors": [len(ta), len(tb)], "same_types_and_sizes": not diff,
                      "differences": dict(list(diff.items())[:20])}, indent=2))


if __name__ == "__main__":
    main()
