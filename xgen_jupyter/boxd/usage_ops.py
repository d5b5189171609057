"""The box service's usage books over the socket (core/box/usage_books.py).

``usage_add``: a user's Jupyter server books the requests and tokens of answers its proxy relayed,
always to the peer's own row (the kernel names the peer: a user cannot add to anyone else's).
Token counts are therefore as reported by that user's own Jupyter server; memory-seconds are
metered here, by the service that holds the reservations, and no client can add to them.
``usage``: the peer's rows, or with ``scope: "box"`` everyone's (totals per user and model).
"""

from __future__ import annotations

from typing import Any

from ..core.box.usage_books import Entry, UsageBooks, check_tokens
from ..core.errors import RequestError, XGenError
from .peer import Peer
from .service import BoxService

#: Rows (models) one user may have in the service's books.
MAX_MODELS = 2000


class Forbidden(XGenError):
    status = 403


class UsageOps:
    service: BoxService

    def _books(self) -> UsageBooks:
        return UsageBooks(self.service.housekeeping.db)

    def op_usage_add(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        user = req.get("user", peer.user)
        if user != peer.user:
            raise Forbidden(f"{peer.user} may not add to {user!r}'s usage", "a user's proxy books its own answers only")
        model = req.get("model")
        if not isinstance(model, str) or not model or len(model) > 130:
            raise RequestError("'model' must be the server's name (a non-empty string of at most 130 characters)")
        n, prompt, completion = check_tokens(req.get("requests", 1), req.get("prompt_tokens", 0),
                                             req.get("completion_tokens", 0))
        books = self._books()
        models = books.models(peer.user)
        if model not in models and len(models) >= MAX_MODELS:  # a client inventing names must not fill the file
            raise RequestError(f"{peer.user} already has usage rows for {len(models)} models on this box",
                               "usage is booked per server name; ask the administrator to archive old rows")
        books.add([Entry(peer.user, model, n, prompt, completion)])
        return {"user": peer.user, "model": model}

    def op_usage(self, peer: Peer, req: dict[str, Any]) -> list[dict[str, Any]]:
        scope = req.get("scope", "mine")
        if scope not in ("mine", "box"):
            raise RequestError(f"scope must be 'mine' or 'box', not {scope!r}")
        for core in self.service.cores().values():  # memory-seconds of every ready server, up to now
            core.ledger.meter.checkpoint()
        return [r.to_dict() for r in self._books().rows(None if scope == "box" else peer.user)]
