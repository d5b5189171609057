#!/usr/bin/env bash
# .venv-ai: .venv (xgen-jupyter and everything else) plus the `ai` extra (Jupyter AI 3, Jupyternaut,
# LiteLLM; ~400 MB). A venv of its own so the other tests' Jupyter servers do not load Jupyter AI
# (it adds ~10 s to each start); tests/server/test_aichat_jupyternaut.py and the Galata
# jupyter-ai spec run their Jupyter from here. Run after scripts/setup-venv.sh; ~1 min, re-runs are no-ops.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base_sp=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
[ -x .venv-ai/bin/python ] || .venv/bin/python -m venv --without-pip .venv-ai 2>/dev/null || python3 -m venv .venv-ai
ai_sp=$(.venv-ai/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
# addsitedir (not a plain path line) so .venv's own .pth files run too: the editable xgen-jupyter.
echo "import site; site.addsitedir('$base_sp')" > "$ai_sp/xgen-base-venv.pth"
# Jupyter looks for config and data under sys.prefix: link .venv's (the xgen server extension and
# labextension, JupyterLab's app folder, ...) into .venv-ai, entry by entry, beside Jupyter AI's own.
link_entries() {  # $1: folder under the prefix; links each entry of .venv/$1 not in .venv-ai/$1
    mkdir -p ".venv-ai/$1"
    for f in ".venv/$1"/*; do
        [ -e "$f" ] && [ ! -e ".venv-ai/$1/$(basename "$f")" ] && ln -s "$root/$f" ".venv-ai/$1/"
    done
    return 0
}
reqs=$(.venv/bin/python - <<'PY'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["ai"]))
PY
)
.venv/bin/python -m pip --python .venv-ai/bin/python install -q $reqs
for d in .venv/etc/jupyter/*.d; do link_entries "${d#.venv/}"; done
link_entries share/jupyter/labextensions
link_entries share/jupyter  # after labextensions: that folder is merged, the others linked whole
echo "AI venv: $root/.venv-ai ($reqs)"
