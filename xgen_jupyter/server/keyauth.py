"""xgen API keys at the proxy: ``Authorization: Bearer xgen-...`` is checked here, before Jupyter's
own auth, by the proxy's handlers alone. Every other handler leaves the header to Jupyter's
IdentityProvider, which knows only the Jupyter token, so a key opens nothing else.

Each request a key makes is counted on its row (and the tokens, read from the ``usage`` object the
engine ends its answer with), after the answer is sent, off the IOLoop.
"""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider, User
from jupyter_server.base.call_context import CallContext
from tornado import web
from tornado.ioloop import IOLoop

from ..core.box import identity
from ..core.box.apikeys import PREFIX, KeyInfo, KeyStore
from ..core.box.db import Database
from ..core.scheduler.usage import Tail
from .handlers.base import XGenHandler


def key_store(settings: dict[str, Any]) -> KeyStore:
    """This Jupyter server's user's keys: in the box registry when this process holds it, else in a
    private file in the state folder (the box service keeps its registry to itself)."""
    store = settings.get("xgen_keys")
    if store is None:
        core = settings["xgen_core"]
        state = Path(core.config.state_dir)
        registry = getattr(core, "registry", None)
        if registry is not None:
            db, owner = registry.db, registry.user
        else:
            # The box service's client: the service vouches for who we are (the socket's peer), not $XGEN_USER.
            owner = getattr(core, "hello", {}).get("user") or core.config.user or identity.current_user()
            db = Database(state / "api-keys", private=True)
        store = settings["xgen_keys"] = KeyStore(db, owner, state)
    return store


def bearer_key(header: str) -> str | None:
    """The xgen key in an Authorization header (``Bearer`` or ``token`` scheme), else None."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() in ("bearer", "token") and value.startswith(PREFIX) else None


class KeyRefused(web.HTTPError):
    """A key refused (401) or a model it does not open (403); ``message`` is what the client reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "%s", message)  # a literal format: the message may hold a '%'
        self.message = message


class KeyAuthHandler(XGenHandler):
    """Base of the proxy's handlers: a Jupyter login or token as before, or an xgen API key."""

    xgen_key: KeyInfo | None = None
    #: The answer's last bytes (token counts), fed once per chunk; the proxy's accounting reads it too.
    tail: Tail | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        header = self.request.headers.get("Authorization", "")
        key = bearer_key(header)
        if key is None:
            if not self.jupyter_token(header):
                await super().prepare()
            return
        if not self.check_host():
            raise web.HTTPError(403)
        store = key_store(self.settings)
        info = await asyncio.to_thread(store.verify, key)
        if info is None:
            raise KeyRefused(401, "The xgen API key is not valid: unknown, revoked, or another user's. "
                                     "`%xgen keys` lists yours; `%xgen keys create NAME` makes one.")
        self.xgen_key, self.tail = info, Tail()
        self._logged_in(User(username=info.owner, display_name=f"{info.owner} (API key {info.name})"))

    def _logged_in(self, user: User) -> None:
        """``user``, by a header credential, like a Jupyter token: no XSRF or Origin check (browsers
        cannot set it cross-site); the rest as Jupyter's ``prepare()`` does it."""
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        self._token_authenticated = True
        self.current_user = self._jupyter_current_user = user
        self.set_cors_headers()

    def jupyter_token(self, header: str) -> bool:
        """The Jupyter token in the header, checked here when Jupyter's own check would say the same:
        the default identity providers'. Theirs also decodes the login cookie twice and signs a new one
        for a client without one: 0.3 ms of every proxied request (first_request.md). Anything else (no
        token, a cookie alone, JupyterHub, a custom provider) is theirs; the authorizer decides after."""
        idp = self.identity_provider
        token = idp.token if type(idp) in (IdentityProvider, PasswordIdentityProvider) else ""
        scheme, _, value = header.partition(" ")
        if not token or scheme.lower() not in ("token", "bearer") or not hmac.compare_digest(
                value.strip().encode(), token.encode()):
            return False
        if not self.check_host():
            raise web.HTTPError(403)
        # What Jupyter's token check gives a client without a login cookie: an anonymous user, which
        # the fair queues and the books take for this server's owner (scheduling.user_of). One for
        # every such request: making it (a UUID, a name, a log line) took 0.09 ms a request.
        user = self.settings.get("xgen_token_user")
        if user is None:
            user = self.settings["xgen_token_user"] = idp.generate_anonymous_user(self)
        self._logged_in(user)
        return True

    def check_key_model(self, model: str) -> None:
        """A key made for some models gets a 403 for any other."""
        if self.xgen_key is not None and not self.xgen_key.allows(model):
            opens = ", ".join(self.xgen_key.models or [])
            raise KeyRefused(403, f"This API key ({self.xgen_key.name!r}) does not open the model {model!r}; "
                                     f"it opens: {opens}.")

    def key_allows(self, model: str) -> bool:
        return self.xgen_key is None or self.xgen_key.allows(model)

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        if self.tail is not None and isinstance(chunk, bytes):
            self.tail.feed(chunk)
        super().write(chunk)

    def on_finish(self) -> None:
        super().on_finish()
        if self.xgen_key is None or self.tail is None:
            return
        store, key_id = key_store(self.settings), self.xgen_key.id
        prompt, completion = self.tail.usage() or (0, 0)

        def record() -> None:
            try:
                store.record(key_id, prompt, completion)
            except Exception as exc:  # counting must never fail a request that was answered
                self.log.warning("xgen: could not count a request of API key %s: %s", key_id, exc)

        IOLoop.current().run_in_executor(None, record)
