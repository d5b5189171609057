#!/usr/bin/env bash
# Two venvs on top of .venv (they see its packages: xgen-jupyter and everything else):
#   .venv-ai    the `ai` extra: Jupyter AI 3, Jupyternaut, LiteLLM (~400 MB)
#   .venv-lite  the `ai-lite` extra: jupyterlite-ai (~8 MB); it pins jupyterlab-ai-commands <0.4,
#               Jupyter AI 3 wants 0.4: the two cannot share one environment.
# Venvs of their own so the other tests' Jupyter servers do not load them (Jupyter AI adds ~10 s to
# each start). tests/server/test_aichat_jupyternaut.py and the Galata jupyter-ai / jupyterlite-ai
# specs run their Jupyter from here. Run after scripts/setup-venv.sh; ~1 min, re-runs are no-ops.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
base_sp=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')

make_venv() {  # $1: folder, $2: extra of pyproject.toml
    local venv=$1 extra=$2 sp reqs
    [ -x "$venv/bin/python" ] || .venv/bin/python -m venv --without-pip "$venv"
    sp=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    # addsitedir (not a plain path line) so .venv's own .pth files run too: the editable xgen-jupyter.
    echo "import site; site.addsitedir('$base_sp')" > "$sp/xgen-base-venv.pth"
    reqs=$(.venv/bin/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['$extra']))")
    .venv/bin/python -m pip --python "$venv/bin/python" install -q $reqs
    # Jupyter looks for config and data under sys.prefix: link .venv's (the xgen server extension and
    # labextension, JupyterLab's app folder, ...) entry by entry, beside the venv's own.
    for d in .venv/etc/jupyter/*.d; do link_entries "$venv" "${d#.venv/}"; done
    link_entries "$venv" share/jupyter/labextensions
    link_entries "$venv" share/jupyter  # after labextensions: that folder is merged, the others linked whole
    echo "$venv: .venv + $reqs"
}

link_entries() {  # $1: venv, $2: folder under the prefix; links each entry of .venv/$2 not in $1/$2
    mkdir -p "$1/$2"
    for f in ".venv/$2"/*; do
        [ -e "$f" ] && [ ! -e "$1/$2/$(basename "$f")" ] && ln -s "$root/$f" "$1/$2/"
    done
    return 0
}

make_venv .venv-ai ai
make_venv .venv-lite ai-lite
