"""Without a box service the models run in the Jupyter server itself, and every view says so:
GET xgen/api/hardware, the events websocket's hello and `%xgen gpus` (the box service's side:
tests/boxd/test_box_loop_free.py)."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import next_json, on_server_loop
from xgen_jupyter.boxd.remote import IN_PROCESS
from xgen_jupyter.notebook.render import hardware_text


@on_server_loop
async def test_hardware_hello_and_gpus_text_say_in_this_jupyter_server(api: Any, jp_ws_fetch: Any) -> None:
    code, hw = await api("GET", "hardware")
    assert code == 200 and hw["xgen_core"] == IN_PROCESS == "in this Jupyter server"
    assert hardware_text(hw).endswith("\nmodels run: in this Jupyter server")
    ws = await jp_ws_fetch("xgen", "api", "events", params={"interval": "0"})
    hello = await next_json(ws)
    ws.close()
    assert hello["kind"] == "hello" and hello["xgen_core"] == IN_PROCESS
