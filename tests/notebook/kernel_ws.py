"""A minimal kernel client over a Jupyter server's REST + websocket API (as JupyterLab talks to it).

The kernel is started BY the server, so it is the server's child: the magics' discovery of
"my own server" by parent pid runs for real.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import websocket


@dataclass
class Execution:
    """Everything a cell sent on iopub, in order."""

    stdout: str = ""
    stderr: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    displays: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    # (monotonic time, text) per stdout stream message: shows whether tokens came in pieces
    stdout_chunks: list[tuple[float, str]] = field(default_factory=list)
    status: str = ""

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class KernelSession:
    def __init__(self, base_url: str, token: str, env: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token
        self.http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"token {token}"}, trust_env=False
        )
        body: dict[str, Any] = {"name": "python3"}
        if env:
            body["env"] = env
        resp = self.http.post("api/kernels", json=body)
        resp.raise_for_status()
        self.kernel_id = resp.json()["id"]
        self.session = uuid.uuid4().hex
        ws_url = "ws" + self.base_url[4:] + f"api/kernels/{self.kernel_id}/channels?session_id={self.session}"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {token}"], timeout=120)

    def execute(self, code: str, timeout: float = 180.0) -> Execution:
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {"msg_id": msg_id, "username": "test", "session": self.session, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
            "channel": "shell",
            "buffers": [],
        }  # fmt: skip
        self.ws.send(json.dumps(msg))
        out = Execution()
        deadline = time.monotonic() + timeout
        idle = replied = False
        while not (idle and replied):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code!r}\n{out.text}")
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            raw = self.ws.recv()
            if not isinstance(raw, str):
                continue  # binary frames: widget buffers, not needed here
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = m["header"]["msg_type"], m["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    out.stdout += content["text"]
                    out.stdout_chunks.append((time.monotonic(), content["text"]))
                else:
                    out.stderr += content["text"]
            elif kind == "error":
                out.errors.append(content)
            elif kind in ("display_data", "update_display_data"):
                out.displays.append(content)
            elif kind == "execute_result":
                out.results.append(content)
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                out.status = content["status"]
                replied = True
        return out

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.http.delete(f"api/kernels/{self.kernel_id}")
            self.http.close()
