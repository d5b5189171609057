"""Sharing a loaded model with named users, who reach it through their own Jupyter proxy.

Threat model (see docs/shared-box.md): the registry file is world-readable and writable, so
it holds no secret. The engine's API key goes into a key file of its own, created 0600 in
``<shared_dir>/keys``; each grantee that is another Unix user gets read access through a
POSIX ACL (``setfacl -m u:NAME:r``), which needs no root. If ACLs cannot be set, sharing with
another Unix user is refused rather than widened to everyone.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import sqlite3
import subprocess
from pathlib import Path

from ..errors import ServerNotFound, ShareError
from .db import prepare_dir
from .registry import BoxRegistry

USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


def _unix_uid(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None  # an xgen identity without a Unix account (XGEN_USER): same-uid processes only


def write_key_file(folder: Path, owner: str, name: str, key: str, grantees: list[str]) -> str:
    keys = folder / "keys"
    prepare_dir(keys)
    path = keys / f"{owner}-{name}-{secrets.token_hex(8)}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    others = [g for g in grantees if (uid := _unix_uid(g)) is not None and uid != os.getuid()]
    if others:
        setfacl = shutil.which("setfacl")
        for g in others:
            r = subprocess.run([setfacl, "-m", f"u:{g}:r", str(path)] if setfacl else ["false"],
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                os.unlink(path)
                raise ShareError(f"cannot give {g} read access to the key of {name!r}: "
                                 f"{(r.stderr or 'setfacl is not installed').strip()}",
                                 "install the acl package, or use a shared folder on a file system with ACLs")
    return str(path)


def share(reg: BoxRegistry, name: str, key: str, grantees: list[str]) -> list[str]:
    """Let ``grantees`` use our server ``name``; replaces its earlier share list. [] unshares."""
    bad = [g for g in grantees if not isinstance(g, str) or not USER_RE.match(g)]
    if bad:
        raise ShareError(f"not user names: {', '.join(map(repr, bad))}", "give a list of login names")
    grantees = sorted(set(grantees) - {reg.user})
    key_file = write_key_file(reg.folder, reg.user, name, key, grantees) if grantees else None

    def op(con: sqlite3.Connection) -> str | None:
        r = con.execute("SELECT id, key_file FROM servers WHERE host=? AND owner_pid=? AND owner_started=?"
                        " AND owner=? AND name=?", (reg.host, reg.pid, reg.started, reg.user, name)).fetchone()
        if r is None:
            raise ServerNotFound(f"no server named {name!r} is registered", "load it first")
        con.execute("UPDATE servers SET key_file=? WHERE id=?", (key_file, r[0]))
        con.execute("DELETE FROM shares WHERE server_id=?", (r[0],))
        con.executemany("INSERT INTO shares (server_id, grantee) VALUES (?,?)", [(r[0], g) for g in grantees])
        return str(r[1]) if r[1] else None

    try:
        old = reg._do(op)
    except BaseException:
        if key_file:
            os.unlink(key_file)
        raise
    if old:
        try:
            os.unlink(old)
        except OSError:
            pass
    return grantees


def lookup(reg: BoxRegistry, owner: str, name: str) -> tuple[str, str]:
    """(endpoint, key) of ``owner``'s server ``name`` shared with us; ServerNotFound otherwise."""

    def op(con: sqlite3.Connection) -> tuple[str | None, str | None, str] | None:
        r = con.execute(
            "SELECT s.endpoint, s.key_file, s.state FROM servers s JOIN shares g ON g.server_id = s.id"
            " WHERE s.owner=? AND s.name=? AND s.host=? AND g.grantee=?", (owner, name, reg.host, reg.user)).fetchone()
        return (r[0], r[1], r[2]) if r else None

    found = reg._do(op, write=False)
    if found is None:
        raise ServerNotFound(f"{owner} has not shared a server named {name!r} with {reg.user}",
                             "ask its owner to share it with you")
    endpoint, key_file, state = found
    if state != "ready" or not endpoint or not key_file:
        raise ShareError(f"{owner}/{name} is not ready (state: {state})", "try again when it is ready")
    try:
        key = Path(key_file).read_text().strip()
    except OSError as exc:
        raise ShareError(f"cannot read the key of {owner}/{name}: {exc.strerror}",
                         "its owner must share it again (the key file's ACL does not name you)") from None
    return endpoint, key
