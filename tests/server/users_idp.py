"""A Jupyter identity provider for tests: fixed tokens for the users alice, bob and carol (plus the
server's own token), so one real Jupyter server sees requests of several authenticated users."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

TOKENS = {"alice-token": "alice", "bob-token": "bob", "carol-token": "carol"}


class TestUsers(IdentityProvider):
    __test__ = False  # not a pytest class

    def get_user(self, handler: Any) -> Any:
        auth = handler.request.headers.get("Authorization", "")
        token = auth.partition(" ")[2].strip()
        if token in TOKENS:
            handler._token_authenticated = True  # as Jupyter's own tokens: no XSRF cookie needed
            return User(TOKENS[token])
        return super().get_user(handler)
