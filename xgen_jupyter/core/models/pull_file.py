"""Download one hub file into a models folder: resumable, verified, and shared between concurrent pulls.

The bytes travel through ``huggingface_hub``'s own HEAD (redirects, auth, ``HF_ENDPOINT``) and
``http_get`` (retries, Range). What it does not do since 1.x, and a 20 GB model needs, is kept here:
the partial file survives an interrupted pull (``.xgen-pull/<name>.<etag>.part``, continued by the next
pull with a Range request), a cross-process lock makes a second pull of the same file wait for the
first instead of downloading it again, and the finished file is checked against the hub's sha256
(git blob sha1 for small non-LFS files) before it is moved into place, so the catalog never lists a
partial or corrupt model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .pull_spec import HubFile

META_DIR = ".xgen-pull"  # hidden: list_models skips it
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_HASH_CHUNK = 8 * 1024 * 1024

#: Called with (bytes of this file on disk so far, state); state: downloading | waiting | verifying.
FileProgress = Callable[[int, str], None]


def make_dir(path: Path, shared: bool) -> None:
    """Create ``path``; a box-wide one is 1777 like the shared dir, so every user can pull into it."""
    path.mkdir(parents=True, exist_ok=True)
    if shared and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o7777 != 0o1777:
        os.chmod(path, 0o1777)  # mkdir's mode is cut by the umask


def meta_paths(root: Path, rel: str) -> tuple[Path, Path, Path]:
    """(lock, sidecar, partial-prefix) of the file ``rel`` under ``root``: all in root/.xgen-pull."""
    key = rel.replace("/", "%")
    meta = root / META_DIR
    return meta / f"{key}.lock", meta / f"{key}.json", meta / key


def partial_bytes(root: Path, rel: str) -> int:
    """Bytes a previous, interrupted pull left of ``rel`` (any etag): what a resume will not fetch."""
    _, _, prefix = meta_paths(root, rel)
    parts = prefix.parent.glob(prefix.name + ".*.part") if prefix.parent.is_dir() else []
    return max((p.stat().st_size for p in parts), default=0)


def is_complete(root: Path, rel: str, f: HubFile) -> bool:
    """``rel`` is in place and its sidecar says it is this exact version (no re-hash of 20 GB)."""
    _, sidecar, _ = meta_paths(root, rel)
    dest = root / rel
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return False
    return dest.is_file() and dest.stat().st_size == f.size and meta.get("sha256") == f.sha256 \
        and meta.get("blob_id") == f.blob_id  # fmt: skip


def pulled_from(root: Path, rel: str) -> str | None:
    """The repo a pull took ``rel`` from, per its sidecar; None for a file xgen did not pull."""
    _, sidecar, _ = meta_paths(root, rel)
    try:
        return str(json.loads(sidecar.read_text()).get("repo"))
    except (OSError, ValueError):
        return None


def _file_hash(path: Path, kind: str, size: int) -> str:
    h = hashlib.sha256() if kind == "sha256" else hashlib.sha1()
    if kind == "sha1":
        h.update(f"blob {size}\0".encode())  # git's blob id: sha1 over header + content
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _expected_hash(f: HubFile, etag: str) -> tuple[str, str] | None:
    if f.sha256:
        return "sha256", f.sha256
    if _SHA256.match(etag):
        return "sha256", etag
    if f.blob_id or _SHA1.match(etag):
        return "sha1", f.blob_id or etag
    return None


class _Bar:
    """The ``tqdm_class`` handed to ``http_get``: forwards byte counts, prints nothing."""

    def __init__(self, on_bytes: Callable[[int], None], initial: int = 0, **_: Any) -> None:
        self._on_bytes = on_bytes
        self.n = initial

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        self.n += n
        self._on_bytes(self.n)

    def close(self) -> None:
        return None


def download(
    *, endpoint: str, repo: str, revision: str, f: HubFile, root: Path, rel: str,
    token: str | None, on_progress: FileProgress, poll: float = 0.25, shared: bool = False,
) -> Path:  # fmt: skip
    """Fetch ``f`` (at ``revision``) to ``root/rel``; return the path. Waits while another pull of
    the same file (any process) holds its lock, then finds the file done instead of fetching it."""
    import filelock

    lock_path, _, prefix = meta_paths(root, rel)
    make_dir(lock_path.parent, shared)
    # 0o666: on a shared box the next user must be able to take the lock another user's pull created.
    lock = filelock.FileLock(str(lock_path), mode=0o666 if shared else 0o644)
    while True:
        try:
            lock.acquire(timeout=poll)
            break
        except filelock.Timeout:
            on_progress(partial_bytes(root, rel), "waiting")
    try:
        if is_complete(root, rel, f):
            on_progress(f.size or 0, "downloading")
            return root / rel
        return _fetch(endpoint, repo, revision, f, root, rel, prefix, token, on_progress)
    finally:
        lock.release()


def head(endpoint: str, repo: str, revision: str, name: str, token: str | None) -> Any:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, name, revision=revision, endpoint=endpoint)
    return get_hf_file_metadata(url, token=token, endpoint=endpoint)


def _fetch(endpoint: str, repo: str, revision: str, f: HubFile, root: Path, rel: str, prefix: Path,
           token: str | None, on_progress: FileProgress) -> Path:  # fmt: skip
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    meta = head(endpoint, repo, revision, f.name, token)
    etag = (meta.etag or "").strip('"')
    size = f.size if f.size is not None else meta.size
    version = f"{prefix.name}.{etag[:16] or 'noetag'}"
    part = prefix.with_name(f"{version}.part")
    if part.exists() and not os.access(part, os.W_OK):  # another user's partial on a shared box
        part = prefix.with_name(f"{version}.{os.getuid()}.part")
    for stale in prefix.parent.glob(prefix.name + ".*.part"):
        if not stale.name.startswith(version + "."):
            try:  # a partial of an older version of the file: useless now
                stale.unlink()
            except OSError:
                pass  # another user's, in a sticky folder
    if part.exists() and size is not None and part.stat().st_size > size:
        part.unlink()
    resume = part.stat().st_size if part.exists() else 0
    headers = build_hf_headers(token=token)
    if not meta.location.startswith(endpoint):
        headers.pop("authorization", None)  # a signed CDN URL: the hub token must not travel there
    with part.open("ab") as out:
        http_get(meta.location, out, resume_size=resume, headers=headers, expected_size=size,
                 displayed_filename=f.name,
                 tqdm_class=lambda **kw: _Bar(lambda n: on_progress(n, "downloading"), **kw))  # type: ignore[arg-type]  # fmt: skip
    on_progress(part.stat().st_size, "verifying")
    _verify(repo, f, etag, part)
    dest = root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(part, 0o644)  # readable by every user of the box, whatever the umask
    os.replace(part, dest)
    _, sidecar, _ = meta_paths(root, rel)
    sidecar.write_text(json.dumps({"repo": repo, "file": f.name, "revision": revision, "etag": etag,
                                   "sha256": f.sha256, "blob_id": f.blob_id, "size": size}))  # fmt: skip
    return dest


def _verify(repo: str, f: HubFile, etag: str, part: Path) -> None:
    size = part.stat().st_size
    if f.size is not None and size != f.size:
        part.unlink(missing_ok=True)
        raise ModelError(f"{repo}/{f.name}: got {size} bytes, the hub lists {f.size}",
                         "pull again; if it repeats, the mirror serves a different file")  # fmt: skip
    want = _expected_hash(f, etag)
    if want is None:
        return  # the hub gave no hash to check (a non-hub mirror): the size check above is all there is
    got = _file_hash(part, want[0], size)
    if got != want[1]:
        part.unlink(missing_ok=True)  # bad bytes: resuming on top of them would never succeed
        raise ModelError(
            f"{repo}/{f.name} is corrupt: its {want[0]} is {got[:16]}..., the hub says {want[1][:16]}...",
            "the download was discarded; pull again (check HF_ENDPOINT if it points at a mirror)",
        )
