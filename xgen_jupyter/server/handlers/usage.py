"""GET xgen/api/usage: the box's usage books (core/box/usage_books.py) as JSON.

Yours by default; ``?scope=box`` for every user's, totals per user and model. "Yours" is the
requesting Jupyter user in-process, and the Jupyter server's own Unix user with the box service
(the service books each user's answers to the socket's peer).
"""

from __future__ import annotations

import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...core.errors import RequestError
from ..scheduling import scheduler, user_of
from .base import XGenHandler

SCOPES = ("mine", "box")


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("requests", "prompt_tokens", "completion_tokens", "gpu_byte_seconds", "host_byte_seconds")
    return {k: sum(r.get(k) or 0 for r in rows) for k in keys}


class UsageHandler(XGenHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        scope = self.get_query_argument("scope", "mine")
        if scope not in SCOPES:
            raise RequestError(f"scope must be 'mine' or 'box', not {scope!r}", "GET xgen/api/usage?scope=box")
        usage = scheduler(self.settings).usage
        # With the box service the books are the socket peer's: this Jupyter server's Unix user.
        user = str(getattr(self.core, "hello", {}).get("user") or user_of(self))
        rows = await self.blocking(usage.rows, None if scope == "box" else user)  # sqlite, or the service's socket
        self.reply({"scope": scope, "user": user, "time": time.time(), "rows": rows, "totals": totals(rows)})
