"""API keys that open only the proxy (``xgen/v1``): made per user, stored hashed, counted per key.

A key reads ``xgen-<id>-<secret>``: ``id`` (12 hex digits) finds the row, ``secret`` (32 random
bytes, URL-safe base64) is checked against its SHA-256 in constant time. The plain key is returned
once, at creation, and kept nowhere. Rows live in the box registry's SQLite file (db.py's
``api_keys`` table) when this process holds it, else in a private file in the state folder.

The shared registry is world-writable (docs/shared-box.md), so each row is sealed with an HMAC
under a secret only its owner can read (``api-keys.secret``, 0600, in the owner's state folder):
a row another user wrote or edited (to add a key for someone else, or widen a key's models) fails
the seal and opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RequestError, XGenError
from .db import Database

PREFIX = "xgen-"
KEY_RE = re.compile(r"^xgen-([0-9a-f]{12})-([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
SECRET_FILE = "api-keys.secret"
MAX_KEYS = 100  # per user: a runaway script should not fill the shared file


class KeyNotFound(XGenError):
    """No key of this user has that id."""

    status = 404


@dataclass
class KeyInfo:
    """One key as listed (never its secret)."""

    id: str
    name: str
    owner: str
    models: list[str] | None  # None: every model this user's proxy serves
    created_at: float
    last_used: float | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    key: str | None = field(default=None, repr=False)  # the plain key: set once, in create()'s answer

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["key"] is None:
            del d["key"]
        return d

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


def parse_key(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    m = KEY_RE.match(text.strip())
    return (m.group(1), m.group(2)) if m else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _load_secret(folder: Path) -> bytes:
    """The owner's sealing secret, made on first use (O_EXCL: two servers starting together agree)."""
    path = folder / SECRET_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the creator may not have written it yet
                data = path.read_bytes()
                if len(data) >= 32:
                    return data
                time.sleep(0.02)
            raise XGenError(f"the API-key secret {path} is damaged",
                            "delete it (every key is then void) and retry") from None
    except OSError as exc:
        raise XGenError(f"cannot keep the API-key secret in {folder}: {exc}", "check c.XGen.state_dir") from None
    try:
        data = secrets.token_bytes(32)
        os.write(fd, data)
    finally:
        os.close(fd)
    return data


def check_models(models: Any) -> list[str] | None:
    if models is None:
        return None
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and 0 < len(m) <= 200 for m in models):
        raise RequestError("'models' must be a non-empty list of model (server) names, or left out for all models",
                           'e.g. {"name": "ci", "models": ["default"]}')
    return sorted(set(models))


@contextmanager
def _store_errors(db: Database) -> Iterator[None]:
    """SQLite's failures (a lock held 30 s, a full disk) as one clear error, not a 500 with a traceback."""
    try:
        yield
    except sqlite3.Error as exc:
        raise XGenError(f"the API-key store {db.path} failed: {exc}", "try again; see docs/shared-box.md") from None


class KeyStore:
    """One user's keys in ``db``; ``state_dir`` holds the sealing secret."""

    def __init__(self, db: Database, owner: str, state_dir: Path) -> None:
        self.db, self.owner = db, owner
        self._seal_key = _load_secret(Path(state_dir))

    def _seal(self, key_id: str, digest: str, models: str | None) -> str:
        msg = json.dumps([key_id, self.owner, digest, models]).encode()
        return hmac.new(self._seal_key, msg, hashlib.sha256).hexdigest()

    def create(self, name: Any, models: Any = None) -> KeyInfo:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise RequestError("a key needs a 'name' of 1-64 letters, digits, spaces or ._@-",
                               "say what uses it, e.g. 'ci' or 'laptop'")
        scope = check_models(models)
        key_id, secret = secrets.token_hex(6), base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        digest, models_text = _digest(secret), json.dumps(scope) if scope is not None else None
        now = time.time()
        with _store_errors(self.db), self.db.transaction() as con:
            (count,) = con.execute("SELECT count(*) FROM api_keys WHERE owner=?", (self.owner,)).fetchone()
            if count >= MAX_KEYS:
                raise RequestError(f"{self.owner} already has {count} API keys", "revoke some first")
            con.execute("INSERT INTO api_keys (id, owner, name, models, digest, seal, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key_id, self.owner, name, models_text, digest, self._seal(key_id, digest, models_text), now))
        return KeyInfo(key_id, name, self.owner, scope, now, key=f"{PREFIX}{key_id}-{secret}")

    def _info(self, row: tuple[Any, ...]) -> KeyInfo | None:
        """A row as KeyInfo, or None when its seal does not hold (written by someone else)."""
        key_id, name, models_text, digest, seal, created, last_used, requests, ptok, ctok = row
        if not hmac.compare_digest(seal, self._seal(key_id, digest, models_text)):
            return None
        models = json.loads(models_text) if models_text is not None else None
        return KeyInfo(key_id, name, self.owner, models, created, last_used, requests, ptok, ctok)

    _COLS = "id, name, models, digest, seal, created_at, last_used, requests, prompt_tokens, completion_tokens"

    def listing(self) -> list[KeyInfo]:
        with _store_errors(self.db), self.db.connect() as con:
            rows = con.execute(f"SELECT {self._COLS} FROM api_keys WHERE owner=? ORDER BY created_at",
                               (self.owner,)).fetchall()
        return [k for k in map(self._info, rows) if k is not None]

    def revoke(self, key_id: str) -> KeyInfo:
        with _store_errors(self.db), self.db.transaction() as con:
            row = con.execute(f"SELECT {self._COLS} FROM api_keys WHERE owner=? AND id=?",
                              (self.owner, str(key_id))).fetchone()
            info = self._info(row) if row else None
            if info is None:
                raise KeyNotFound(f"{self.owner} has no API key {key_id!r}", "`%xgen keys` lists them")
            con.execute("DELETE FROM api_keys WHERE owner=? AND id=?", (self.owner, key_id))
        return info

    def verify(self, key: str) -> KeyInfo | None:
        """The key's entry if ``key`` is a live key of this owner, else None (no hint why)."""
        parts = parse_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        with _store_errors(self.db), self.db.connect() as con:
            row = con.execute(f"SELECT {self._COLS} FROM api_keys WHERE owner=? AND id=?",
                              (self.owner, key_id)).fetchone()
        if row is None or not hmac.compare_digest(row[3], _digest(secret)):
            return None
        return self._info(row)

    def record(self, key_id: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """One more request through the proxy with this key (and the tokens it used, when known)."""
        with _store_errors(self.db), self.db.transaction() as con:
            con.execute("UPDATE api_keys SET requests=requests+1, prompt_tokens=prompt_tokens+?, "
                        "completion_tokens=completion_tokens+?, last_used=? WHERE owner=? AND id=?",
                        (int(prompt_tokens), int(completion_tokens), time.time(), self.owner, key_id))
