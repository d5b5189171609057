"""Find cmake, a generator, compilers and ccache; assemble the full cmake command for a backend."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from xgen_jupyter.core.errors import XGenError

from .backends import (
    COMMON_CMAKE_ARGS,
    BackendSpec,
    cuda_cmake_args,
    extra_cmake_args,
    find_cublas_header,
    find_nvcc,
)
from .progress import ProgressFn
from .vulkan_deps import vulkan_cmake_args

DEPS_HINT = "run scripts/install-system-deps.sh as root (apt-get install cmake build-essential ninja-build ...)"


@dataclass(frozen=True)
class Toolchain:
    cmake: str
    generator: str  # "Ninja" or "Unix Makefiles"
    cc: str
    cxx: str
    ccache: str | None


def _first(names: tuple[str, ...]) -> str | None:
    for n in names:
        found = shutil.which(n)
        if found:
            return found
    return None


def _compiler(env: str, names: tuple[str, ...]) -> str | None:
    # CC/CXX, when set, is the only choice: a user who set it does not want a silent substitute.
    chosen = os.environ.get(env)
    return shutil.which(chosen) if chosen else _first(names)


def find_toolchain(spec: BackendSpec) -> Toolchain:
    """The build tools, or an XGenError naming what is missing and how to get it."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise XGenError(f"cmake is needed to build {spec.name} and is not on PATH", hint=DEPS_HINT)
    cc = _compiler("CC", ("cc", "gcc", "clang"))
    cxx = _compiler("CXX", ("c++", "g++", "clang++"))
    if cc is None or cxx is None:
        raise XGenError(f"a C and C++ compiler are needed to build {spec.name}; none found on PATH", hint=DEPS_HINT)
    ninja = shutil.which("ninja")
    if ninja is None and shutil.which("make") is None:
        raise XGenError("neither ninja nor make is on PATH", hint=DEPS_HINT)
    for tool in spec.tools:
        if shutil.which(tool) is None:
            raise XGenError(f"{tool} is needed to build {spec.name} and is not on PATH", hint=DEPS_HINT)
    if spec.needs_cuda:
        nvcc = find_nvcc()
        if nvcc is None:
            raise XGenError(f"nvcc (the CUDA toolkit) is needed to build {spec.name} and was not found",
                            hint="install the CUDA toolkit, or set CUDACXX / CUDA_HOME")
        if find_cublas_header(nvcc) is None:
            raise XGenError(f"the CUDA toolkit of {nvcc} has no cuBLAS headers (cublas_v2.h)",
                            hint="install the toolkit's cuBLAS development files (e.g. libcublas-dev-13-0)")
    return Toolchain(cmake=cmake, generator="Ninja" if ninja else "Unix Makefiles", cc=cc, cxx=cxx,
                     ccache=shutil.which("ccache"))


def cmake_configure_args(spec: BackendSpec, tc: Toolchain, build_number: str, deps_dir: Path,
                         progress: ProgressFn | None = None) -> list[str]:
    """Every -D flag for this backend, in the order cmake sees them (later ones win)."""
    args = [*COMMON_CMAKE_ARGS, f"-DLLAMA_BUILD_NUMBER={build_number}",
            f"-DCMAKE_C_COMPILER={tc.cc}", f"-DCMAKE_CXX_COMPILER={tc.cxx}"]
    if tc.ccache:
        args += [f"-DCMAKE_C_COMPILER_LAUNCHER={tc.ccache}", f"-DCMAKE_CXX_COMPILER_LAUNCHER={tc.ccache}"]
    args += spec.cmake_args
    if spec.needs_vulkan_headers:
        args += vulkan_cmake_args(deps_dir, progress)
    if spec.needs_cuda:
        nvcc = find_nvcc()
        assert nvcc is not None  # find_toolchain checked
        args += cuda_cmake_args(nvcc)
        if tc.ccache:
            args.append(f"-DCMAKE_CUDA_COMPILER_LAUNCHER={tc.ccache}")
    return args + extra_cmake_args()
