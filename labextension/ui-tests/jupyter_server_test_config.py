"""Jupyter server for the Galata UI tests: galata's test settings (no token, test
workspaces), on 127.0.0.1 with a fixed port under a non-root base_url, so every URL
the sidebar builds is checked against a prefix. Never use this configuration in
production: it turns authentication off."""

import os
from tempfile import mkdtemp

from jupyterlab.galata import configure_jupyter_server

configure_jupyter_server(c)  # type: ignore[name-defined]  # noqa: F821

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ.get("XGEN_UI_PORT", "28731"))  # noqa: F821
c.ServerApp.base_url = os.environ.get("XGEN_UI_BASE_URL", "/xgen-ui/")  # noqa: F821
# CI runs as root.
c.ServerApp.allow_root = True  # noqa: F821
c.ServerApp.jpserver_extensions = {"xgen_jupyter": True}  # noqa: F821
# Engine logs and state of this run only.
c.XGen.state_dir = mkdtemp(prefix="xgen-ui-state-")  # noqa: F821
# A box registry of this run only: other runs on the machine must not show up in "On this box".
c.XGen.shared_dir = mkdtemp(prefix="xgen-ui-shared-")  # noqa: F821
c.XGen.gpu_sample_interval = 1.0  # noqa: F821
