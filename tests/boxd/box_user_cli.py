"""Run as a Unix user by the service tests (runuser): one action, its result as one JSON line.

    call OP ARGS_JSON     a BoxClient call: {"ok": true, "result": ...} or {"ok": false, "error": ..., ...}
    status                what `xgen box --status` prints
    raw MESSAGE_JSON      one framed message written straight to the socket; the raw reply
    read PATH             try to read a file: {"ok": true, "size": n} or {"ok": false, "error": "PermissionError"}
    write PATH            try to append to a file
    chat ENDPOINT KEY     one chat completion straight to an engine
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.error
import urllib.request

from xgen_jupyter.boxd import wire
from xgen_jupyter.boxd.client import BoxClient
from xgen_jupyter.core.errors import XGenError


def main(action: str, *args: str) -> dict:
    sock_path = os.environ["XGEN_BOX_SOCKET"]
    if action == "call":
        try:
            return {"ok": True, "result": BoxClient(sock_path, retry_for=5).call(args[0], **json.loads(args[1]))}
        except XGenError as exc:
            return {"ok": False, **exc.to_dict(), "status": exc.status}
    if action == "status":  # `xgen box --status`, as this user
        import contextlib
        import io
        from pathlib import Path

        from xgen_jupyter.boxd.main import status

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status(Path(sock_path))
        return {"ok": True, "text": out.getvalue()}
    if action == "raw":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(sock_path)
        wire.send(s, json.loads(args[0]))
        return wire.recv(s, wire.MAX_REPLY)
    if action in ("read", "write"):
        try:
            if action == "read":
                with open(args[0], "rb") as f:
                    return {"ok": True, "size": len(f.read())}
            with open(args[0], "ab") as f:
                f.write(b"x")
            return {"ok": True}
        except OSError as exc:
            return {"ok": False, "error": type(exc).__name__}
    if action == "chat":
        body = json.dumps({"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8}).encode()
        req = urllib.request.Request(f"{args[0]}/v1/chat/completions", body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {args[1]}"} if args[1] else {})})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return {"ok": True, "status": r.status, "body": json.loads(r.read())}
        except urllib.error.HTTPError as exc:
            return {"ok": False, "status": exc.code}
    raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:])))
