#!/usr/bin/env bash
# UI tests of the JupyterLab sidebar: Galata (Playwright) driving Debian's Chromium against
# a real Jupyter server with the xgen extension and the real default engine.
# What CI runs after scripts/setup-venv.sh. About 2 minutes once the npm deps are cached.
#
#   scripts/ui-tests.sh                 run the tests
#   scripts/ui-tests.sh --screenshots   also write docs/screenshots/sidebar*.png
#   extra arguments go to `playwright test` (e.g. -g "recorded GPU")
#
# Env: CHROMIUM_PATH (default /usr/bin/chromium), XGEN_UI_PORT (default 28731),
#      XGEN_UI_BASE_URL (default /xgen-ui/: a non-root base_url on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$root/.venv/bin:$PATH"

shots=""
if [[ "${1:-}" == "--screenshots" ]]; then
    shots="$root/docs/screenshots"
    mkdir -p "$shots"
    shift
fi

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
fi
export CHROMIUM_PATH="$chromium"

# The labextension: built by `pip install -e .` (hatch-jupyter-builder); build it if missing.
if [[ ! -f xgen_jupyter/labextension/package.json ]]; then
    (cd labextension && jlpm install && jlpm build)
fi
if ! jupyter labextension list 2>&1 | grep -E "xgen-jupyter .*enabled.*OK" >/dev/null; then
    jupyter labextension develop --overwrite .
fi

# The fixed default port may be taken on a shared box (another run): then take a free one.
if [[ -z "${XGEN_UI_PORT:-}" ]]; then
    XGEN_UI_PORT=$(python - <<'PY'
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 28731))
    print(28731)
except OSError:
    s.close(); s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
finally:
    s.close()
PY
)
    export XGEN_UI_PORT
fi

cd labextension/ui-tests
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 jlpm install
# --pass-with-no-tests: a -g filter may match only the other run's tests.
CI=1 XGEN_SCREENSHOTS_DIR="$shots" jlpm playwright test --pass-with-no-tests "$@"

# Jupyter AI's and jupyterlite-ai's chats on xgen models: a Jupyter server of their own each, from
# .venv-ai / .venv-lite (scripts/setup-ai-venv.sh), on a free port; screenshots go to docs/img.
for run in ai lite; do
    if [[ -x "$root/.venv-$run/bin/python" ]]; then
        ai_port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        CI=1 XGEN_UI_PORT="$ai_port" XGEN_SCREENSHOTS_DIR="${shots:+$root/docs/img}" \
            jlpm playwright test -c "playwright-$run.config.js" --pass-with-no-tests "$@"
    else
        echo "no .venv-$run (scripts/setup-ai-venv.sh): the playwright-$run.config.js UI test did not run"
    fi
done
