#!/usr/bin/env bash
# Run the test suite against a build of the extensions with AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   tools/sanitize.sh [pytest arguments]        (default: -q -p no:cacheprovider tests)
#
# Copies the working tree (the files git tracks or would track, as they are now) to a temporary directory, builds
# the extensions in place there with gcc's -fsanitize=address,undefined,float-cast-overflow
# -fno-sanitize-recover=all -fno-omit-frame-pointer -g, on top of setup.py's flags (so the optimised code that
# ships is what is checked), and runs pytest on that copy with libasan preloaded, since the python binary itself
# is not instrumented. The first ASan or UBSan report aborts the run; the report goes to a file (pytest's capture
# would swallow it on stderr), which the script prints before exiting non-zero. Before the tests, it checks that
# every extension is instrumented and is the fastnn that python imports.
#   ASAN_OPTIONS   detect_leaks=0: CPython does not free everything at exit, so LeakSanitizer would only report
#                  the interpreter (tests/test_memory.py checks fastnn's own leaks)
#   PYTHONMALLOC   malloc: Python's objects come from malloc too, so ASan guards them as well
# Needs gcc with libasan and libubsan (Debian: apt-get install gcc libasan8 libubsan1), and a python with the build
# and test requirements: in CI's venv, `pip install "Cython>=3.0" "setuptools>=77"` on top of ".[test]".
# FASTNN_SANITIZE_KEEP=1 keeps the temporary directory.
# Measured on the project's shared 2-core machine, busy with other jobs (load average 7-12): build 692 s, tests
# 995 s, 28 min wall in all (`time tools/sanitize.sh`, 8 extensions, 7,828 tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
if [ $# -eq 0 ]; then set -- -q -p no:cacheprovider tests; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fastnn-sanitize.XXXXXX")
if [ "${FASTNN_SANITIZE_KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -cf - -T - | tar -xf - -C "$work"
cd "$work"

echo "== build with ASan + UBSan in $work =="
start=$(date +%s)
CC=gcc CFLAGS="$FLAGS" LDFLAGS="$FLAGS" "$PY" setup.py -q build_ext --inplace -j 2
echo "built in $(( $(date +%s) - start )) s"

echo "== tests under ASan + UBSan =="
for so in src/fastnn/_*.so; do
    nm -D --undefined-only "$so" | grep __asan_init > /dev/null || { echo "$so is not instrumented" >&2; exit 1; }
done
report="$work/sanitizer-report"
# libstdc++ too: C++ extensions loaded later (matplotlib's ft2font) throw, and ASan's __cxa_throw must find it
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)" PYTHONMALLOC=malloc \
       PYTHONPATH="$work/src" \
       ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$report" \
       UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$report"
"$PY" -c 'import sys, fastnn; sys.exit(not fastnn.__file__.startswith(sys.argv[1]))' "$work" \
    || { echo "python imports a fastnn other than the sanitized build" >&2; exit 1; }
start=$(date +%s)
status=0
"$PY" -m pytest "$@" || status=$?
echo "tests ran in $(( $(date +%s) - start )) s, exit status $status"
if compgen -G "$report.*" > /dev/null; then
    cat "$report".* >&2
    status=1
fi
exit $status
