#!/usr/bin/env bash
# Create .venv and install xgen-jupyter with the CPU engine, the default model and the test tools.
# The JupyterLab sidebar is built by hatch-jupyter-builder (jlpm) during the install.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# An editable install leaves install.json in the built labextension; the wheel also maps the
# root install.json to the same place, so a second install would fail on the duplicate.
rm -f xgen_jupyter/labextension/install.json
# llama-cpp-python compiles from source (~7 min on 2 cores the first time; pip caches the wheel).
.venv/bin/python -m pip install -q -e ".[cpu,test]"
