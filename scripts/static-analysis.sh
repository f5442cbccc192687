#!/bin/sh
# Static analysis (issue #11): cppcheck and clang-tidy over lib/, src/abota and src/abota-sim,
# with the compile commands of a meson build directory.  Part of `make check`
# (`make static-analysis`); exits non-zero on any finding.
#
#   sh scripts/static-analysis.sh [BUILD_DIR]       (default: build)
#   JOBS=N ...                                      parallel jobs (default: nproc)
#
# clang-tidy's checks are in .clang-tidy at the top of the tree; cppcheck's options are
# below.  Suppress a finding only on its line, with the reason:
#   clang-tidy: /* NOLINT(check-name): why */      cppcheck: // cppcheck-suppress id  (why)
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
JOBS=${JOBS:-$(nproc)}
OUT=$BUILD/static-analysis
mkdir -p "$OUT/cppcheck"

[ -f "$BUILD/compile_commands.json" ] || { echo "static-analysis: $BUILD/compile_commands.json missing (meson setup first)" >&2; exit 1; }
for t in cppcheck clang-tidy; do
    command -v $t >/dev/null 2>&1 || { echo "static-analysis: $t not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

# Files or directories (trailing /) not analysed yet, space-separated; empty since
# lib/hawkbit/ joined (issue #11).  A new area that is not clean yet goes here, with its
# findings listed in docs/security.md until it is.
PENDING=''

# The compile commands of our C files, with absolute paths, minus the pending ones.
/usr/bin/python3 - "$BUILD" "$SRC" "$OUT" "$PENDING" <<'PY'
import json, os, sys
build, src, out, pending = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
keep = []
for c in json.load(open(os.path.join(build, "compile_commands.json"))):
    f = os.path.normpath(os.path.join(c["directory"], c["file"]))
    rel = os.path.relpath(f, src)
    if not rel.startswith(("lib/", "src/abota/", "src/abota-sim/")) or not rel.endswith(".c"):
        continue
    if any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in pending):
        continue
    c = dict(c, file=f)
    keep.append(c)
if not keep:
    sys.exit("static-analysis: no lib/ or src/ files in the compile commands")
json.dump(keep, open(os.path.join(out, "compile_commands.json"), "w"), indent=1)
open(os.path.join(out, "files"), "w").write("".join(c["file"] + "\n" for c in keep))
PY
n=$(wc -l < "$OUT/files")
status=0

# cppcheck: the warning, portability and performance classes (style is left to review and
# clang-tidy); --cppcheck-build-dir keeps results of unchanged files between runs.
# Suppressed everywhere: findings inside system headers (the compile commands name
# /usr/include/... with -I), and readdirCalled, which recommends readdir_r(): glibc
# deprecates that one, and readdir() is thread-safe as long as one DIR is not shared.
echo "static-analysis: cppcheck on $n files"
if ! cppcheck --project="$OUT/compile_commands.json" --cppcheck-build-dir="$OUT/cppcheck" \
        -j "$JOBS" --std=c11 --enable=warning,portability,performance \
        --inline-suppr --error-exitcode=1 --quiet \
        --library=posix --suppress=missingIncludeSystem --suppress='*:/usr/include/*' \
        --suppress=readdirCalled \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
        > "$OUT/cppcheck.log" 2>&1; then
    cat "$OUT/cppcheck.log"
    echo "static-analysis: cppcheck found problems (above)" >&2
    status=1
fi

# clang-tidy: one process per file, JOBS at a time.
echo "static-analysis: clang-tidy on $n files ($JOBS jobs)"
if ! xargs -P "$JOBS" -n 1 clang-tidy --quiet -p "$OUT" < "$OUT/files" > "$OUT/clang-tidy.log" 2>&1; then
    grep -E ': (warning|error):' "$OUT/clang-tidy.log" | sort -u
    echo "static-analysis: clang-tidy found problems (full log: $OUT/clang-tidy.log)" >&2
    status=1
fi
[ $status = 0 ] && echo "static-analysis: clean"
exit $status
