#!/usr/bin/env bash
# macOS wheels (cibuildwheel before-all): build LLVM's OpenMP runtime, libomp, from the LLVM release source
# for this machine's architecture and the wheels' MACOSX_DEPLOYMENT_TARGET, and install it into PREFIX.
# Homebrew's libomp targets the build machine's own macOS, so a wheel bundling it (delocate) would not load
# on the older macOS its tag promises. Apple clang has no OpenMP runtime of its own.
# Usage: MACOSX_DEPLOYMENT_TARGET=11.0 tools/build_libomp_macos.sh PREFIX
set -euo pipefail
PREFIX=${1:?usage: build_libomp_macos.sh PREFIX}
: "${MACOSX_DEPLOYMENT_TARGET:?set the wheels deployment target}"
LLVM=${LLVM_VERSION:-19.1.7}
URL=https://github.com/llvm/llvm-project/releases/download/llvmorg-$LLVM
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
cd "$SRC"
for part in openmp cmake; do   # openmp's CMake files include the shared LLVM modules from ../cmake
    curl -fsSL "$URL/$part-$LLVM.src.tar.xz" | tar -xJ
    mv "$part-$LLVM.src" "$part"
done
cmake -S openmp -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DCMAKE_OSX_ARCHITECTURES="$(uname -m)" -DCMAKE_OSX_DEPLOYMENT_TARGET="$MACOSX_DEPLOYMENT_TARGET" \
    -DLIBOMP_INSTALL_ALIASES=OFF
cmake --build build --target install -j "$(sysctl -n hw.ncpu)"
otool -l "$PREFIX/lib/libomp.dylib" | grep -A4 -E 'LC_BUILD_VERSION|LC_VERSION_MIN_MACOSX'   # the minimum macOS
