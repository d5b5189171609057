#!/bin/bash
# Issue 15's warm-overhead check on a GPU box, in one device call (nvidia-h200, timeout_s 600):
# time to first token and total time of streamed chat completions, straight to llama-server (CUDA)
# vs through the xgen proxy of a real Jupyter server, the two paths back to back in every run
# (benchmarks/gpu/proxy_decode.py). A/B in the same session: the tree's code ("new") against an older
# commit's xgen_jupyter copied into .dev/base ("base"; `git archive COMMIT xgen_jupyter | tar -x -C
# .dev/base`), alternating, so drift on the machine hits both alike.
#
# Carries .dev/carry (jupyter_server and the wheels it needs, gguf; benchmarks/gpu/prepare_carry.sh)
# and .dev/engine (the CUDA llama-server packed by run_plans.sh's first call); no build here.
# Usage on the device: ROUNDS=2 RUNS=25 bash benchmarks/gpu/run_proxy.sh    (results under $OUT)
set -u
T0=$(date +%s)
END=${END:-560}
ROUNDS=${ROUNDS:-2}
RUNS=${RUNS:-25}
REPO=$PWD
W=/root/xgen-proxy
mkdir -p "$W" "$OUT"
exec > >(tee -a "$OUT/proxy.log") 2>&1
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( T0 + END - $(date +%s) )); }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$REPO"/.dev/carry/*.whl || exit 1
export PYTHONPATH=/tmp/site:$REPO PYTHONUNBUFFERED=1
say "card"
nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
nproc; grep -m1 "model name" /proc/cpuinfo; python3 --version
say "engine carried"
mkdir -p "$W/engines" && cat "$REPO"/.dev/engine/eng.tar.xz.* | xz -d | tar -xf - -C "$W/engines"
ENG=$(find "$W/engines" -name llama-server -type f -perm -u+x | head -1)
[ -x "$ENG" ] || { say "NO ENGINE in .dev/engine"; exit 1; }
"$ENG" --version 2>&1 | tail -2
say "model: random Llama-3-8B-shaped Q4_K_M"
python3 benchmarks/gpu/make_model.py "$W/dense.gguf" --type q4_k_m > "$W/model.log" 2>&1 || { tail "$W/model.log"; exit 1; }
cat "$W/dense.gguf" > /dev/null
if [ "${TRACE:-1}" = 1 ]; then
    # Where the time goes: a copy of the tree patched to write one line of timestamps per proxied
    # request (benchmarks/gpu/proxy_trace.patch), lined up with the client's samples.
    say "traced run"
    rm -rf "$W/traced" && mkdir -p "$W/traced" && cp -r "$REPO/xgen_jupyter" "$W/traced/"
    (cd "$W/traced" && patch -s -p1 < "$REPO/benchmarks/gpu/proxy_trace.patch") || exit 1
    XGEN_TRACE_FILE=$OUT/trace.txt timeout 120 python3 benchmarks/gpu/proxy_decode.py --binary "$ENG" \
        --model "$W/dense.gguf" --repo "$W/traced" --runs "$RUNS" --tokens 8 --no-usage --out "$OUT/traced.json" | tail -3
    python3 benchmarks/gpu/trace_segments.py "$OUT/traced.json" "$OUT/trace.txt"
fi
n=0
for r in $(seq 1 "$ROUNDS"); do
    for tree in new base; do
        [ "$(left)" -gt 60 ] || { say "out of time: stop before round $r $tree"; break 2; }
        repo=$REPO; [ "$tree" = base ] && repo=$REPO/.dev/base
        n=$((n + 1))
        say "round $r: $tree ($repo)"
        timeout "$(( $(left) - 5 ))" python3 benchmarks/gpu/proxy_decode.py --binary "$ENG" --model "$W/dense.gguf" \
            --repo "$repo" --runs "$RUNS" --tokens 48 --no-usage --out "$OUT/ttft-$n-$tree.json" | tail -4
    done
done
say "done"
