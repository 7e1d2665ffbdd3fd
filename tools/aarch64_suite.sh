#!/usr/bin/env bash
# The Python test suite on aarch64, from an x86-64 Debian machine: an arm64 Debian root (debootstrap) whose
# programs run under qemu-user through binfmt_misc. Inside it, the README's test command builds fastnn with
# the root's own aarch64 gcc against PyPI's aarch64 wheels (numpy, scipy, ...) and runs the whole suite.
# tools/aarch64_check.sh is the quick check (cross build + GEMM self-check); this one is the slow, whole one.
#
#   sudo tools/aarch64_suite.sh [pytest arguments, default: -q tests]
#
# Needs root (chroot, mounts, binfmt_misc) and, on Debian: apt-get install debootstrap qemu-user-static.
# ARM64_ROOT (default /var/tmp/fastnn-arm64) is made once and kept; the tree is copied in afresh every run.
# Measured on the 2-core Zen 5 host (session 13): debootstrap 2.5 min, then 40 min a run (pip install '.[test]'
# 11 min, the suite 27 min): 8,802 passed, 50 skipped (torch absent; the AVX2 path, not there; the wheel's own).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARM64_ROOT=${ARM64_ROOT:-/var/tmp/fastnn-arm64}
QEMU=${QEMU:-/usr/bin/qemu-aarch64-static}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "needs root (chroot and mounts)" >&2; exit 2; }
for tool in debootstrap "$QEMU"; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install debootstrap qemu-user-static)" >&2; exit 2; }
done

# aarch64 ELF files run by qemu; F opens the interpreter now, so it need not exist inside the root.
BINFMT=/proc/sys/fs/binfmt_misc
[ -e "$BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$BINFMT"
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    printf '%s' ':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'`
        `':\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':OCF' \
        > "$BINFMT/register"
fi

if [ ! -x "$ARM64_ROOT/usr/bin/python3" ]; then
    debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv,python3-dev,gcc,g++,ca-certificates bookworm "$ARM64_ROOT" "$MIRROR"
fi
cp /etc/resolv.conf "$ARM64_ROOT/etc/resolv.conf"
# The host's bundle: where a proxy re-signs TLS, its certificate is there and not in Debian's.
cp /etc/ssl/certs/ca-certificates.crt "$ARM64_ROOT/etc/ssl/certs/ca-certificates.crt"

mounted=()
cleanup() { for m in "${mounted[@]}"; do umount -R -l "$m" || true; done; }
trap cleanup EXIT
for m in proc sys dev; do
    mountpoint -q "$ARM64_ROOT/$m" && continue
    if [ "$m" = proc ]; then mount -t proc proc "$ARM64_ROOT/proc"; else mount --rbind "/$m" "$ARM64_ROOT/$m"; fi
    mounted+=("$ARM64_ROOT/$m")
done

rm -rf "$ARM64_ROOT/root/fastnn"
mkdir -p "$ARM64_ROOT/root/fastnn"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$ARM64_ROOT/root/fastnn")

[ $# -gt 0 ] || set -- -q tests
args=$(printf '%q ' "$@")
start=$SECONDS
env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin TERM=dumb "$(command -v chroot)" "$ARM64_ROOT" /bin/bash -euc "
    uname -m
    cd /root/fastnn
    rm -rf /root/venv && python3 -m venv /root/venv && . /root/venv/bin/activate
    python -m pip install -q --upgrade pip
    pip install -q '.[test]'
    python -c 'import fastnn, platform; from fastnn import _gemm; print(platform.machine(), fastnn.__version__, _gemm.cpu_path())'
    python -m pytest $args"
echo "== aarch64 suite: $((SECONDS - start)) s"
