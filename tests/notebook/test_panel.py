"""The ipywidgets panel, driven in this process against the real Jupyter server: its widget
models hold the live data from the extension's events websocket."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import xgen_jupyter
from tests.core.hardware.hwfixtures import FIXTURES, NVMLReplay
from tests.notebook.waits import wait_for
from xgen_jupyter.core.hardware.nvml import NVMLDetector
from xgen_jupyter.notebook import panel as panel_module
from xgen_jupyter.notebook.panel import XGenPanel

pytestmark = pytest.mark.engine


@pytest.fixture()
def panel(remote: Any) -> Iterator[XGenPanel]:
    p = XGenPanel(remote, interval=0.5)
    try:
        yield p
    finally:
        p.close()
        for s in remote.servers():
            if s["state"] not in ("stopped", "failed", "crashed"):
                remote.unload(s["name"])


def test_rows_appear_and_turn_ready_from_events(panel: XGenPanel, remote: Any) -> None:
    wait_for(lambda: panel.events_seen, 30, "the hello message")
    assert panel.gpus.cpu.value.startswith("CPU: ")  # hardware from the server's hello
    assert "default" in panel.form.model.options  # model picker from xgen/api/models
    assert "auto" in panel.form.backend.options
    assert "pl" not in panel.rows

    # Loaded behind the panel's back (REST, as another notebook would): only events can tell it.
    remote.load({"model": "default", "name": "pl"})
    row = wait_for(lambda: panel.rows.get("pl"), 30, "a row for 'pl'")
    assert row.widget in panel.servers_box.children
    seen: list[str] = []

    def ready() -> bool:
        if not seen or seen[-1] != row.state.value:
            seen.append(row.state.value)
        return row.state.value == "ready"

    wait_for(ready, 120, "state ready")
    assert seen[0] in ("planned", "starting", "loading"), seen  # it changed, it did not start out ready
    assert row.endpoint.value.startswith("http://127.0.0.1:")
    assert row.backend.value == remote.server("pl")["backend"]
    assert "[" in row.reasons.value  # the plan's reasons, e.g. [cpu-parallel-1]
    assert row.progress.value == 1.0

    # The unload button: state goes to stopped through the events, the button disables.
    row.unload_button.click()
    wait_for(lambda: row.state.value == "stopped", 60, "state stopped")
    assert row.unload_button.disabled


def test_load_form_and_live_log(panel: XGenPanel) -> None:
    wait_for(lambda: panel.events_seen, 30, "the hello message")
    panel.form.model.value = "default"
    panel.form.name.value = "form"
    panel.form.n_ctx.value = 1024
    assert panel.form.request() == {"model": "default", "backend": "auto", "name": "form", "n_ctx": 1024}
    panel.form.load_button.click()
    row = wait_for(lambda: panel.rows.get("form"), 30, "a row for 'form'")
    try:
        wait_for(lambda: row.state.value == "ready", 120, "state ready")
    except AssertionError as exc:  # which side is behind: the server, or the panel's events
        rest = panel.client.server("form")
        raise AssertionError(f"{exc}: the row says {row.state.value} (revision {row.data.get('revision')}), the "
                             f"server {rest.get('state')} (revision {rest.get('revision')}); {panel.events_seen} "
                             f"events seen, {panel.polls} polls") from None
    assert panel.logs.selected == "form"  # loading selects its log
    wait_for(lambda: panel.logs.received and panel.logs.text.value, 30, "the log history in the view")
    # live: a request through the proxy makes the engine log, and the view shows it
    time.sleep(1.0)
    before = panel.logs.received
    reply = xgen_jupyter.client("form", panel.client).completions.create(
        model="form", prompt="Hi", max_tokens=2
    )
    assert reply.choices
    wait_for(lambda: panel.logs.received > before, 30, "a live log line after a request")


def test_bad_load_shows_in_the_form(panel: XGenPanel) -> None:
    panel.load({"model": "/no/such/file.gguf", "name": "bad"})
    assert panel.form.status.value.startswith("xgen: ") and "file.gguf" in panel.form.status.value
    assert "bad" not in panel.rows


def test_gpu_table_from_a_recorded_h100(remote: Any) -> None:
    """No GPU here: feed the table the GPU sample the NVML detector makes from a recorded H100."""
    gpus = [
        g.to_dict() for g in NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")).detect().gpus
    ]
    p = XGenPanel(remote, live=False)
    p.apply({"kind": "gpus", "data": {"gpus": gpus, "time": 0}})
    (row,) = p.gpus.rows.values()
    assert "H100" in row.name.value
    assert row.kind.value == "discrete"
    assert "nvidia" in row.arch.value
    assert row.memory.value == "0.5 / 79.6 GiB"
    assert 0 < row.memory_bar.value < 0.01
    assert row.utilization.value == "0%"
    assert p.gpus.empty.value == ""
    p.apply({"kind": "gpus", "data": {"gpus": [], "time": 1}})
    assert not p.gpus.rows and "no GPU" in p.gpus.empty.value


def test_box_section_lists_our_server(remote: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "On this box" section: the scope=box listing, our own server marked "you". With the
    periodic poll off, every refresh after the first comes from a server state event."""
    monkeypatch.setattr(panel_module, "BOX_PERIOD", 3600.0)
    p = XGenPanel(remote, interval=0.5)
    try:

        def row_for(name: str) -> Any:
            return next((r for r in p.box_rows if r.name.value == name), None)

        # The first listing: empty, or other tests' servers still stopping; never a 'boxed' row yet.
        wait_for(lambda: p.box.empty.value == "no servers on this box" or p.box_rows, 60, "the first listing")
        assert row_for("boxed") is None and not p.box.empty.value.startswith("xgen:"), p.box.empty.value
        remote.load({"model": "default", "name": "boxed"})

        row = wait_for(lambda: row_for("boxed"), 30, "a box row for 'boxed'")
        assert row.widget in p.box.rows_box.children
        assert row.owner.value == "you" and row.data["mine"] is True
        assert row.data["owner"] and row.data["owner"] != "you"  # the real user name stays in the data
        assert row.model.value == "default"
        assert row.devices.value == "cpu"  # no GPU on this box
        assert row.gpu.value.endswith(" GiB") and row.host.value.endswith(" GiB")
        assert not any("key" in k or "log" in k for k in row.data), row.data  # never keys or logs
        wait_for(lambda: row.state.value == "ready", 120, "box row state ready")
        remote.unload("boxed")
        wait_for(lambda: row_for("boxed") is None, 30, "the box row gone after the unload")
        assert all(r.widget in p.box.rows_box.children for r in p.box_rows)
    finally:
        p.close()
        if any(
            s["name"] == "boxed" and s["state"] not in ("stopped", "failed", "crashed")
            for s in remote.servers()
        ):
            remote.unload("boxed")


def test_gpu_table_grouped_by_node(remote: Any) -> None:
    """A two-node Ray cluster report (the recorded H100 on each node): a header per node, index 0 twice."""
    (h100,) = NVMLDetector(nvml=NVMLReplay(FIXTURES / "nvidia-h100.nvml.json")).detect().gpus
    nodes = ("127.0.0.2", "127.0.0.3")
    gpus = [replace(h100, node=n).to_dict() for n in nodes]
    p = XGenPanel(remote, live=False)
    p.apply({"kind": "gpus", "data": {"gpus": gpus, "time": 0}})
    assert set(p.gpus.rows) == {(n, 0) for n in nodes}  # same index on both nodes: two rows
    assert list(p.gpus.node_headers) == list(nodes)
    children = p.gpus.rows_box.children
    expected = []
    for n in nodes:
        header = p.gpus.node_headers[n]
        assert n in header.value
        expected += [header, p.gpus.rows[(n, 0)].widget]
    assert list(children) == expected  # each node's header, then its GPUs
    assert all("H100" in r.name.value and r.memory.value == "0.5 / 79.6 GiB" for r in p.gpus.rows.values())
    # back on one box: no headers, one plain row
    p.apply({"kind": "gpus", "data": {"gpus": [h100.to_dict()], "time": 1}})
    assert set(p.gpus.rows) == {(None, 0)} and not p.gpus.node_headers
    assert list(p.gpus.rows_box.children) == [p.gpus.rows[(None, 0)].widget]


class SilentEvents:
    """The real remote client, but its events websocket never says anything (a proxy that drops it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def events(self, on_message: Any, interval: float = 2.0) -> Callable[[], None]:
        return lambda: None


def test_polls_rest_when_no_events_come(remote: Any) -> None:
    p = XGenPanel(SilentEvents(remote), interval=0.2)
    try:
        remote.load({"model": "default", "name": "polled"})
        row = wait_for(lambda: p.rows.get("polled"), 30, "a row from polling")
        wait_for(lambda: row.state.value == "ready", 120, "state ready from polling")
        assert p.events_seen == 0 and p.polls >= 1
        assert p.gpus.cpu.value.startswith("CPU: ")
    finally:
        p.close()
        remote.unload("polled")
