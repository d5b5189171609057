"""The registry's SQLite file: created world-writable in the shared folder (or, for the box
service, private to it: folder 0700, file 0600), in WAL mode, and recreated (the broken file
kept aside) when it turns out corrupted."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import XGenError

log = logging.getLogger("xgen.box")

DB_NAME = "registry.db"
SHARED_DIR_ENV = "XGEN_SHARED_DIR"
DEFAULT_SHARED_DIR = "/tmp/xgen-shared"
#: Messages SQLite gives for a file that is not (or no longer) a database.
_CORRUPT = ("not a database", "malformed", "file is encrypted", "disk image")

SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL, owner TEXT NOT NULL, owner_pid INTEGER NOT NULL, owner_started REAL NOT NULL,
    name TEXT NOT NULL, model TEXT NOT NULL, backend TEXT NOT NULL, state TEXT NOT NULL,
    engine_pid INTEGER, engine_started REAL, endpoint TEXT, key_file TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (host, owner_pid, owner_started, owner, name)
);
CREATE TABLE IF NOT EXISTS reservations (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    device TEXT NOT NULL, label TEXT NOT NULL, kind TEXT NOT NULL, bytes INTEGER NOT NULL,
    PRIMARY KEY (server_id, device)
);
CREATE TABLE IF NOT EXISTS shares (
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    grantee TEXT NOT NULL,
    PRIMARY KEY (server_id, grantee)
);
CREATE INDEX IF NOT EXISTS reservations_device ON reservations(device);
-- API keys of the proxy (apikeys.py): a SHA-256 of the secret, sealed by its owner; never the key.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, models TEXT,
    digest TEXT NOT NULL, seal TEXT NOT NULL, created_at REAL NOT NULL, last_used REAL,
    requests INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, id)
);
-- Accounting per user and model (usage_books.py): the proxy's counts and the memory-seconds the
-- reserving side metered. Kept across restarts; only ever added to.
CREATE TABLE IF NOT EXISTS usage (
    user TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    gpu_byte_seconds REAL NOT NULL DEFAULT 0, host_byte_seconds REAL NOT NULL DEFAULT 0,
    first_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (user, model)
);
"""


def default_shared_dir() -> Path:
    """``$XGEN_SHARED_DIR`` (an administrator's choice), else /tmp/xgen-shared: one path for every user."""
    return Path(os.environ.get(SHARED_DIR_ENV) or DEFAULT_SHARED_DIR)


def prepare_dir(path: Path) -> None:
    """Create the shared folder like /tmp (1777: everyone writes, only owners delete their files)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) != 0o1777:
            os.chmod(path, 0o1777)  # mkdir's mode is cut by the umask
    except OSError as exc:
        raise XGenError(f"cannot use the shared folder {path}: {exc}",
                        "set c.XGen.shared_dir (or XGEN_SHARED_DIR) to a folder every user can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise XGenError(f"the shared folder {path} is not writable by this user",
                        "an administrator should `chmod 1777` it, or set c.XGen.shared_dir")


def prepare_private_dir(path: Path) -> None:
    """The box service's own folder: 0700, ours, so no user can edit the registry or the quotas."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid != os.getuid():
            raise XGenError(f"the box service's folder {path} belongs to uid {st.st_uid}, not to the service",
                            "give it to the service's account (chown) or pick another --state-dir")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise XGenError(f"cannot use the box service's folder {path}: {exc}") from None


def is_corrupt(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(s in str(exc).lower() for s in _CORRUPT)


class Database:
    def __init__(self, folder: Path, private: bool = False) -> None:
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.mode = 0o600 if private else 0o666
        (prepare_private_dir if private else prepare_dir)(self.folder)
        self._create_file()
        # Two servers starting together on a fresh file: the switch to WAL can answer "database
        # is locked" at once, without SQLite's busy wait (seen in test_two_servers). Retry it.
        deadline = time.monotonic() + 30.0
        while True:
            try:
                self._init_schema()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _init_schema(self) -> None:
        with self._recovering(), self.connect() as con:
            if con.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                log.warning("xgen: %s is not in WAL mode (a network file system?); readers may wait", self.path)
            con.executescript(SCHEMA)
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")

    def _create_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, self.mode)
        except OSError as exc:
            raise XGenError(f"cannot open the box registry {self.path}: {exc}",
                            "check the shared folder's permissions (see docs/shared-box.md)") from None
        try:
            if os.fstat(fd).st_uid == os.getuid():
                # Shared: every user's Jupyter server writes it. Private: the box service alone.
                # SQLite gives -wal/-shm the same mode.
                os.fchmod(fd, self.mode)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; timeout is SQLite's busy wait.
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=30000")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: the write lock is taken first, so check-then-insert is atomic box-wide."""
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextlib.contextmanager
    def _recovering(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            self.recreate(str(exc))
            with self.connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(SCHEMA)

    def recreate(self, why: str) -> None:
        """Move the broken file aside and start an empty registry (one process does it; others wait)."""
        lock = self.folder / "registry.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, self.mode)
        try:
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, self.mode)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._healthy():  # another process recovered it while we waited
                return
            aside = self.path.with_name(f"{DB_NAME}.corrupt-{int(time.time())}-{os.getpid()}")
            log.warning("xgen: the box registry %s is corrupted (%s); moved it to %s and started an empty one. "
                        "Reservations of running engines are re-registered as their servers change state.",
                        self.path, why, aside)
            # Copy, then truncate in place: in a sticky (1777) folder only the file's owner may rename
            # it, but every user may write it, and an empty file is a valid new database.
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    shutil.copyfile(f"{self.path}{suffix}", f"{aside}{suffix}")
                    os.truncate(f"{self.path}{suffix}", 0)
            self._create_file()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _healthy(self) -> bool:
        try:
            with self.connect() as con:
                return bool(con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
                            and con.execute("SELECT count(*) FROM servers").fetchone() is not None)
        except sqlite3.DatabaseError:
            return False
