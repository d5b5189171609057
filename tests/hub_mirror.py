"""A local Hugging Face hub on 127.0.0.1 for pull tests: the endpoints huggingface_hub calls.

- ``GET /api/models/{repo}[/revision/{rev}]`` (HfApi.model_info, ``?blobs=True``): id, sha, siblings
  with size, blobId and lfs {size, sha256, pointerSize};
- ``GET /api/models?search=`` (HfApi.list_models);
- ``HEAD /{repo}/resolve/{rev}/{file}`` (get_hf_file_metadata): X-Repo-Commit, ETag, X-Linked-Etag,
  X-Linked-Size, Content-Length; errors carry X-Error-Code (RepoNotFound, EntryNotFound, GatedRepo);
- ``GET`` of the same path (http_get), with ``Range: bytes=N-`` answered 206 + Content-Range.

Faults to test against: ``drop_after`` (close the connection after that many body bytes, then answer
503 until ``healthy()``), ``corrupt`` (flip one byte of what is served), ``delay`` (seconds per 64 KiB
chunk), ``hold`` (an Event: a download pauses after one chunk until it is set), ``tokens`` (a gated repo wants one of them as Bearer). ``gets``,
``served`` and ``ranges`` count what each file cost.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

_CHUNK = 64 * 1024
_sha_cache: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while b := f.read(8 << 20):
                h.update(b)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


class _Repo:
    def __init__(self, repo: str, files: dict[str, Path | bytes], gated: bool) -> None:
        self.id, self.gated = repo, gated
        self.files = files
        self.sha = hashlib.sha1(repo.encode()).hexdigest()  # a commit id: 40 hex

    def size(self, name: str) -> int:
        v = self.files[name]
        return len(v) if isinstance(v, bytes) else v.stat().st_size

    def lfs(self, name: str) -> bool:
        return isinstance(self.files[name], Path)  # Paths are "large" (LFS), bytes are git blobs

    def etag(self, name: str) -> str:
        v = self.files[name]
        if isinstance(v, Path):
            return _sha256(v)
        return hashlib.sha1(b"blob %d\0" % len(v) + v).hexdigest()

    def sibling(self, name: str) -> dict[str, Any]:
        s: dict[str, Any] = {"rfilename": name, "size": self.size(name), "blobId": hashlib.sha1(name.encode()).hexdigest()}
        if self.lfs(name):
            s["lfs"] = {"size": self.size(name), "sha256": self.etag(name), "pointerSize": 134}
        else:
            s["blobId"] = self.etag(name)
        return s


class HubMirror:
    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.tokens: set[str] = set()
        self.drop_after: int | None = None
        self.down = False
        self.corrupt: int | None = None  # offset of the byte to flip
        self.delay = 0.0
        self.names_only = False  # a mirror that lists file names only (no sizes or hashes with ?blobs)
        self.hold: threading.Event | None = None  # downloads pause after their first chunk until it is set
        self.gets: Counter[str] = Counter()
        self.heads: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self.ranges: list[tuple[str, int]] = []
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        mirror = self

        class Handler(_Handler):
            hub = mirror

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, repo: str, files: dict[str, Path | bytes], gated: bool = False) -> None:
        self.repos[repo] = _Repo(repo, files, gated)

    def healthy(self) -> None:
        self.drop_after, self.down, self.corrupt, self.delay = None, False, None, 0.0

    def reset_counts(self) -> None:
        self.gets.clear(), self.heads.clear(), self.served.clear(), self.ranges.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    hub: HubMirror
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return None

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, data: Any) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _error(self, code: int, error_code: str, head: bool = False) -> None:
        msg = json.dumps({"error": error_code}).encode()
        self._send(code, msg, {"X-Error-Code": error_code, "X-Error-Message": error_code}, head)

    def _repo(self, repo_id: str, head: bool = False) -> _Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", head)
            return None
        if repo.gated:
            auth = self.headers.get("authorization") or ""
            if auth.removeprefix("Bearer ") not in self.hub.tokens:
                self._error(401, "GatedRepo", head)
                return None
        return repo

    def do_GET(self) -> None:
        self.hub.auth.append(self.headers.get("authorization"))
        if self.hub.down:
            return self._send(503, b"down")
        url = urlparse(self.path)
        path = unquote(url.path)
        if path == "/api/models":
            term = parse_qs(url.query).get("search", [""])[0].lower()
            return self._json([{"id": r} for r in sorted(self.hub.repos) if term in r.lower()])
        if path.startswith("/api/models/"):
            return self._model_info(path.removeprefix("/api/models/"))
        self._resolve(path, head=False)

    def do_HEAD(self) -> None:
        if self.hub.down:
            return self._send(503, b"", head=True)
        self._resolve(unquote(urlparse(self.path).path), head=True)

    def _model_info(self, rest: str) -> None:
        repo_id, _, rev = rest.partition("/revision/")
        repo = self._repo(repo_id)
        if repo is None:
            return
        if rev and rev not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound")
        siblings = [{"rfilename": n} if self.hub.names_only else repo.sibling(n) for n in sorted(repo.files)]
        self._json({"id": repo.id, "sha": repo.sha, "siblings": siblings})

    def _resolve(self, path: str, head: bool) -> None:
        before, sep, after = path.lstrip("/").partition("/resolve/")
        if not sep:
            return self._send(404, b"", head=head)
        repo = self._repo(before, head)
        if repo is None:
            return
        rev, _, name = after.partition("/")
        if rev not in ("main", repo.sha):
            return self._error(404, "RevisionNotFound", head)
        if name not in repo.files:
            return self._error(404, "EntryNotFound", head)
        size = repo.size(name)
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{repo.etag(name)}"', "Accept-Ranges": "bytes"}
        if repo.lfs(name):
            headers |= {"X-Linked-Etag": f'"{repo.etag(name)}"', "X-Linked-Size": str(size)}
        if head:
            self.hub.heads[name] += 1
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            return
        self._get_file(repo, name, size, headers)

    def _get_file(self, repo: _Repo, name: str, size: int, headers: dict[str, str]) -> None:
        hub = self.hub
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng.removeprefix("bytes=").split("-")[0])
            hub.ranges.append((name, start))
        with hub._lock:
            hub.gets[name] += 1
        self.send_response(206 if start else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        data = repo.files[name]
        src = data.open("rb") if isinstance(data, Path) else None
        try:
            if src:
                src.seek(start)
            pos = start
            while pos < size:
                chunk = src.read(_CHUNK) if src else data[pos : pos + _CHUNK]  # type: ignore[index]
                if hub.corrupt is not None and pos <= hub.corrupt < pos + len(chunk):
                    i = hub.corrupt - pos
                    chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1 :]
                if hub.drop_after is not None and hub.served[name] + len(chunk) > hub.drop_after:
                    keep = max(hub.drop_after - hub.served[name], 0)
                    self.wfile.write(chunk[:keep])
                    hub.served[name] += keep
                    hub.down = True  # the next attempts (http_get retries) find the mirror down
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                with hub._lock:
                    hub.served[name] += len(chunk)
                pos += len(chunk)
                if hub.hold is not None:
                    hub.hold.wait(60)
                if hub.delay:
                    time.sleep(hub.delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            if src:
                src.close()
