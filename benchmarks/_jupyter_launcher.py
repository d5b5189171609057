"""Start a Jupyter server for the benchmark, and hand it the engines' API keys.

The keys never leave the server through its API (by design). The benchmark needs them to
talk to the same engine directly and through jupyter-server-proxy, so this launcher (and
nothing in the shipped package) writes them to a 0600 file the benchmark owns.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from jupyter_server.serverapp import ServerApp


def main() -> None:
    keyfile = os.environ["XGEN_BENCH_KEYFILE"]
    app = ServerApp.instance()
    app.initialize(sys.argv[1:])
    core = app.web_app.settings["xgen_core"]

    def on_event(event: Any) -> None:
        if event.kind == "state" and event.data.get("state") == "ready":
            keys = {s.name: s.api_key for s in core.manager.servers()}
            fd = os.open(keyfile + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(keys, f)
            os.replace(keyfile + ".tmp", keyfile)

    core.manager.subscribe(on_event)
    app.start()


if __name__ == "__main__":
    main()
