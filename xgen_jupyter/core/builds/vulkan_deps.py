"""Vulkan headers new enough for llama.cpp, kept private when the system's are too old.

Current llama.cpp uses ``vk::LayerSettingEXT`` (VK_EXT_layer_settings); Debian 12 ships
Vulkan 1.3.239 headers without it. Debian 13's libvulkan-dev and spirv-headers (1.4.309) work
when only unpacked into a private folder: nothing on the system changes, and the build still
links the system's libvulkan.so.1 and uses its glslc.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path

from xgen_jupyter.core.errors import XGenError

from .progress import ProgressFn

FEATURE = "VK_EXT_layer_settings"
DEBIAN_SUITE = "trixie"
DEBIAN_PACKAGES = ("libvulkan-dev", "spirv-headers")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
LIB_DIRS = (Path("/usr/lib/x86_64-linux-gnu"), Path("/usr/lib/aarch64-linux-gnu"), Path("/usr/lib64"), Path("/usr/lib"))


def headers_ok(include_dir: Path) -> bool:
    """True when ``include_dir/vulkan/vulkan_core.h`` declares the extension llama.cpp needs."""
    core = include_dir / "vulkan" / "vulkan_core.h"
    try:
        return FEATURE in core.read_text(errors="replace")
    except OSError:
        return False


def find_libvulkan() -> Path | None:
    """The Vulkan loader (libvulkan.so.1 from the libvulkan1 package)."""
    for d in LIB_DIRS:
        for name in ("libvulkan.so.1", "libvulkan.so"):
            if (d / name).exists():
                return d / name
    return None


def private_prefix(deps_dir: Path) -> Path:
    return deps_dir / f"vulkan-debian-{DEBIAN_SUITE}" / "root" / "usr"


def ensure_private_headers(deps_dir: Path, progress: ProgressFn | None = None) -> Path:
    """Download and unpack Debian 13's Vulkan and SPIR-V headers under ``deps_dir`` once; return the prefix."""
    base = deps_dir / f"vulkan-debian-{DEBIAN_SUITE}"
    prefix = private_prefix(deps_dir)
    if (base / ".complete").is_file() and headers_ok(prefix / "include"):
        return prefix
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")) or not KEYRING.is_file():
        raise XGenError(
            f"the system Vulkan headers lack {FEATURE}, and this is not a Debian-family box to fetch newer ones",
            hint="install Vulkan headers >= 1.3.261 (e.g. the LunarG SDK) and set "
            "XGEN_ENGINE_CMAKE_ARGS='-DVulkan_INCLUDE_DIR=<sdk>/include'",
        )
    if progress:
        progress(f"fetching Debian {DEBIAN_SUITE} Vulkan headers into {base}", None)
    shutil.rmtree(base, ignore_errors=True)
    lists, cache, pkgs, etc = base / "apt" / "lists", base / "apt" / "cache", base / "debs", base / "apt" / "etc"
    for d in (lists / "partial", cache / "archives" / "partial", pkgs, etc):
        d.mkdir(parents=True, exist_ok=True)
    (etc / "sources.list").write_text(f"deb [signed-by={KEYRING}] {DEBIAN_MIRROR} {DEBIAN_SUITE} main\n")
    # A private sources list, lists dir and cache: the system's apt state is never touched.
    opts = [
        "-o", f"Dir::Etc::SourceList={etc / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}", "-o", "Dir::State::status=/dev/null",
        "-o", f"APT::Sandbox::User={getpass.getuser()}", "-q",
    ]
    _run(["apt-get", *opts, "update"], base, "apt-get update (Debian 13 package lists)")
    _run(["apt-get", *opts, "download", *DEBIAN_PACKAGES], pkgs, "apt-get download " + " ".join(DEBIAN_PACKAGES))
    root = base / "root"
    for deb in sorted(pkgs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(root)], base, f"dpkg-deb -x {deb.name}")
    shutil.rmtree(base / "apt", ignore_errors=True)
    if not headers_ok(prefix / "include"):
        raise XGenError(f"the Debian {DEBIAN_SUITE} headers in {prefix} still lack {FEATURE}",
                        hint="report this: the packages changed")
    (base / ".complete").write_text(" ".join(sorted(p.name for p in pkgs.glob("*.deb"))) + "\n")
    return prefix


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        raise XGenError(f"{what} timed out", hint="check network access to deb.debian.org") from e
    if proc.returncode != 0:
        tail = " / ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise XGenError(f"{what} failed: {tail}", hint="check network access to deb.debian.org")


def vulkan_cmake_args(deps_dir: Path, progress: ProgressFn | None = None) -> list[str]:
    """cmake flags for a Vulkan build: none if the system headers do, else the private Debian 13 ones."""
    loader = find_libvulkan()
    if loader is None:
        raise XGenError("the Vulkan loader libvulkan.so.1 is not installed",
                        hint="run scripts/install-system-deps.sh (apt-get install libvulkan1)")
    if headers_ok(Path("/usr/include")):
        return []
    prefix = ensure_private_headers(deps_dir, progress)
    inc = prefix / "include"
    # -I puts these ahead of any older /usr/include/vulkan; CMAKE_PREFIX_PATH finds SPIRV-Headers' config.
    return [
        f"-DVulkan_INCLUDE_DIR={inc}",
        f"-DVulkan_LIBRARY={loader}",
        f"-DCMAKE_PREFIX_PATH={prefix}",
        f"-DCMAKE_CXX_FLAGS=-I{inc}",
        f"-DCMAKE_C_FLAGS=-I{inc}",
    ]
