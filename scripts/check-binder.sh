#!/bin/bash
# Run binder/'s install steps in a fresh virtual environment and check the result:
# the server extension is enabled, the CPU engine imports, the default model is in place.
# Slow the first time (llama-cpp-python compiles, ~7 min on 2 cores); pip's wheel cache makes
# later runs fast. CI calls this script; it is not a pytest test.
#
#   scripts/check-binder.sh [VENV_DIR]     (default: a temporary folder, removed afterwards)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
if [ $# -ge 1 ]; then venv="$1"; keep=1; else venv="$(mktemp -d)/venv"; keep=0; fi
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$(dirname "$venv")"; fi; }
trap cleanup EXIT

echo "== fresh venv: $venv"
"$python" -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip

# Build from a clean copy of the tracked files, as mybinder clones the repository.
work="$(mktemp -d)"
export IPYTHONDIR="$work/.ipython"  # postBuild's IPython profile goes here, not into this box's ~/.ipython
git -C "$repo" ls-files -z --cached --others --exclude-standard | (cd "$repo" && xargs -0 cp --parents -t "$work")
cd "$work"

echo "== binder/requirements.txt"
python -m pip install -q -r binder/requirements.txt
echo "== binder/postBuild"
bash binder/postBuild

echo "== checks"
list="$(jupyter server extension list 2>&1)"
echo "$list" | grep -E "xgen_jupyter" || true
if ! echo "$list" | grep -Eq "xgen_jupyter.*enabled"; then
    echo "FAIL: xgen_jupyter is not enabled in 'jupyter server extension list'" >&2
    exit 1
fi
if ! echo "$list" | grep -A3 "xgen_jupyter" | grep -q "OK"; then
    echo "FAIL: xgen_jupyter did not validate (import error?)" >&2
    exit 1
fi
# The JupyterLab sidebar ships in the same wheel: report it (its own tests live with labextension/).
if jupyter labextension list 2>&1 | grep -q "xgen-jupyter"; then
    echo "labextension xgen-jupyter: installed"
else
    echo "WARNING: the xgen-jupyter labextension is not installed (the %xgen magics work without it)" >&2
fi
cd /  # import the installed package, not the checkout
if ! ipython -c "assert get_ipython().find_line_magic('xgen'); print('%xgen is loaded at start-up')"; then
    echo "FAIL: the %xgen magics are not loaded at IPython start-up" >&2
    exit 1
fi
python - <<'PY'
import llama_cpp, xgen_jupyter
from xgen_jupyter.core.models.resolve import default_model_path
from xgen_jupyter.core.adapters.catalog import discover_backends
from xgen_jupyter.core.config import CoreConfig
path = default_model_path()
avail = [b for b, i in discover_backends(CoreConfig()).items() if i.available]
assert avail, "no engine available"
print(f"llama_cpp {llama_cpp.__version__}; default model {path}; engines {avail}")
PY
cd / && rm -rf "$work"
echo "OK: binder set-up works"
