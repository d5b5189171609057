"""``xgen pull REPO[:QUANT or FILE]``: a GGUF (or a Hugging Face folder for vLLM) from the hub into
the models folder, where the catalog (:func:`.resolve.list_models`) lists it as soon as it is whole.

Which folder: ``<shared_dir>/models`` on a shared box when the administrator lists it in
``c.XGen.model_dirs`` (one copy of a 20 GB model for every user), else the first model dir, else
``~/.cache/xgen/models`` (``$XGEN_MODELS_DIR``), which the catalog reads when no model dir is set. ``HF_ENDPOINT`` (a mirror) and the user's
token (``HF_TOKEN`` or ``huggingface-cli login``) are honoured as huggingface_hub does.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import ModelError
from . import pull_file
from .pull_dirs import box_dir, pull_dir
from .pull_spec import HubFile, Selection, parse_spec, select

#: Kept free on the target disk after a pull, so a pull never fills a disk to its last byte.
HEADROOM = 64 * 1024 * 1024
DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass
class PullProgress:
    """One progress report: ``fraction`` of ``total`` bytes on disk, ``rate`` in bytes/s this run."""

    repo: str
    file: str
    done: int
    total: int
    rate: float
    state: str  # starting | downloading | waiting (another pull has the file) | verifying | done

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "file": self.file, "done": self.done, "total": self.total,
                "rate": self.rate, "state": self.state, "fraction": self.fraction}  # fmt: skip


ProgressCallback = Callable[[PullProgress], None]


def free_bytes(path: Path) -> int:
    """Free bytes on the disk ``path`` is (or will be) on: its nearest existing folder's disk."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def _hub_files(endpoint: str, repo: str, revision: str | None, token: str | None) -> tuple[str, list[HubFile]]:
    """(commit, files) of the repo from the hub's model info; a clear error for a missing repo."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True)
    except GatedRepoError:
        raise ModelError(f"{repo} is gated: your Hugging Face token has no access to it",
                         "accept its terms on the hub, then set HF_TOKEN or run huggingface-cli login") from None  # fmt: skip
    except RevisionNotFoundError:
        raise ModelError(f"{repo} has no revision {revision!r}", "leave out @REVISION to take main") from None
    except RepositoryNotFoundError:
        raise ModelError(f"No model repo {repo} on {endpoint}", _similar(api, repo)) from None
    except Exception as exc:  # network down, bad HF_ENDPOINT, hub error: one line, not a traceback
        raise ModelError(f"Could not reach {endpoint} for {repo}: {exc}",
                         "check the network, HF_ENDPOINT and HF_TOKEN") from None  # fmt: skip
    files = [HubFile(s.rfilename, s.lfs.size if s.lfs else s.size, s.lfs.sha256 if s.lfs else None, s.blob_id)
             for s in info.siblings or []]  # fmt: skip
    return info.sha or revision or "main", files


def _similar(api: Any, repo: str) -> str:
    """Repos whose name matches the last part of ``repo``: what the user may have meant."""
    term = repo.rsplit("/", 1)[-1]
    try:
        found = [m.id for m in api.list_models(search=term, limit=10)]
    except Exception:  # the search is a courtesy; the error stands without it
        found = []
    if found:
        return "repos matching " + repr(term) + ": " + ", ".join(found)
    return f"no repo matches {term!r}; check the name on the hub (private repos need HF_TOKEN)"


def _check_disk(root: Path, sel: Selection, free: Callable[[Path], int]) -> None:
    have = {f.name: pull_file.partial_bytes(root, _rel(sel, f)) for f in sel.files}
    todo = [f for f in sel.files if not pull_file.is_complete(root, _rel(sel, f), f)]
    need = sum((f.size or 0) - have[f.name] for f in todo)
    avail = free(root)
    if need and need + HEADROOM > avail:
        raise ModelError(
            f"Not enough disk for {sel.files[0].name}: it needs {need / 1e9:.2f} GB (+{HEADROOM >> 20} MiB "
            f"headroom), {root} has {avail / 1e9:.2f} GB free",
            "free some space, or set c.XGen.model_dirs to a folder on a larger disk",
        )


def _sized(endpoint: str, repo: str, commit: str, token: str | None, sel: Selection) -> Selection:
    """Sizes from a HEAD each where the file list had none (a mirror without ``?blobs``): the disk
    check needs them."""
    if all(f.size is not None for f in sel.files):
        return sel
    files = tuple(f if f.size is not None else replace(f, size=pull_file.head(endpoint, repo, commit, f.name, token).size)
                  for f in sel.files)  # fmt: skip
    return replace(sel, files=files)


def _check_clash(root: Path, sel: Selection, repo: str) -> None:
    for f in sel.files:
        rel = _rel(sel, f)
        if (root / rel).exists() and pull_file.pulled_from(root, rel) != repo:
            raise ModelError(f"{root / rel} already exists and was not pulled from {repo}",
                             "move or rename it, or pull into another folder (--dir)")  # fmt: skip


def _rel(sel: Selection, f: HubFile) -> str:
    base = f.name.rsplit("/", 1)[-1]
    return f"{sel.subdir}/{f.name}" if sel.subdir else base


def pull(
    spec: str,
    *,
    model_dirs: list[str] | None = None,
    shared_dir: str | Path | None = None,
    dest: str | Path | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    on_progress: ProgressCallback | None = None,
    free: Callable[[Path], int] = free_bytes,
    min_interval: float = 0.1,
) -> dict[str, Any]:
    """Download the model ``spec`` names; return ``{name, path, format, size, repo, files}``.

    Nothing is written before the disk check passes. ``on_progress`` is called at most every
    ``min_interval`` seconds, and once at the end with state ``done``.
    """
    ps = parse_spec(spec)
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    root = Path(dest) if dest else pull_dir(model_dirs or [], shared_dir)
    shared = shared_dir is not None and root.absolute() == box_dir(shared_dir).absolute()
    commit, files = _hub_files(endpoint, ps.repo, ps.revision, token)
    sel = _sized(endpoint, ps.repo, commit, token, select(ps.repo, files, ps.selector))
    _check_clash(root, sel, ps.repo)
    _check_disk(root, sel, free)
    pull_file.make_dir(root, shared)
    report = _Reporter(ps.repo, sel.total, on_progress, min_interval)
    paths = []
    # Parts after the first, then the first: list_models shows a split GGUF by its first part, and an
    # HF folder once config.json (last in the selection) is there, so a half pull is never listed.
    order = [*sel.files[1:], sel.files[0]] if sel.kind == "gguf" else list(sel.files)
    report.current = order[0].name
    report.begin(sum(f.size or 0 if pull_file.is_complete(root, _rel(sel, f), f)
                     else pull_file.partial_bytes(root, _rel(sel, f)) for f in sel.files))  # fmt: skip
    for f in order:
        rel = _rel(sel, f)
        try:
            paths.append(pull_file.download(endpoint=endpoint, repo=ps.repo, revision=commit, f=f, root=root,
                                            rel=rel, token=token, on_progress=report.file(f), shared=shared))  # fmt: skip
        except ModelError:
            raise
        except Exception as exc:  # the connection dropped, the mirror went away: the partial stays
            kept = pull_file.partial_bytes(root, rel)
            raise ModelError(
                f"The download of {ps.repo}/{f.name} stopped at {kept / 1e6:.1f} of {(f.size or 0) / 1e6:.1f} MB: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                "run the same pull again: it continues from there",
            ) from None
        report.finish_file(f)
    report.done()
    first = root / _rel(sel, sel.files[0])
    path = root / sel.subdir if sel.kind == "hf" else first
    name = sel.subdir if sel.kind == "hf" else os.path.relpath(first, root).removesuffix(".gguf")
    return {"name": name, "path": str(path), "format": sel.kind, "size": sel.total, "repo": ps.repo,
            "revision": commit, "quant": sel.quant, "files": [str(p) for p in paths]}  # fmt: skip


class _Reporter:
    """Sums the per-file byte counts into one progress line, throttled, with a rate over this run."""

    def __init__(self, repo: str, total: int, cb: ProgressCallback | None, min_interval: float) -> None:
        self.repo, self.total, self.cb, self.min_interval = repo, total, cb, min_interval
        self.finished = 0  # bytes of files already done
        self.start = time.monotonic()
        self.first: int | None = None  # bytes on disk when this run began (a resume starts there)
        self.last_emit = 0.0
        self.current = ""
        self.done_bytes = 0

    def begin(self, on_disk: int) -> None:
        self.first = on_disk
        self.emit(on_disk, "starting", force=True)

    def file(self, f: HubFile) -> pull_file.FileProgress:
        self.current = f.name

        def on(n: int, state: str) -> None:
            self.emit(self.finished + n, state)

        return on

    def finish_file(self, f: HubFile) -> None:
        self.finished += f.size or 0

    def emit(self, done: int, state: str, force: bool = False) -> None:
        if self.first is None:
            self.first = done
        self.done_bytes = done
        now = time.monotonic()
        if self.cb is None or (not force and now - self.last_emit < self.min_interval and state == "downloading"):
            return
        self.last_emit = now
        rate = (done - self.first) / max(now - self.start, 1e-6) if state != "waiting" else 0.0
        self.cb(PullProgress(self.repo, self.current, done, self.total, rate, state))

    def done(self) -> None:
        self.emit(self.total, "done", force=True)
