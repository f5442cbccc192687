#!/bin/sh
# Line coverage of lib/ (docs/security.md "Coverage of lib/"): a gcov build, the unit
# tests and the end-to-end tests that are not marked slow, then gcovr's summary per area.
#
#   sh scripts/coverage.sh [BUILD_DIR]     (default: build-cov)
#
# Needs gcovr (Debian package gcovr; `make coverage` installs it).  Not part of
# `make check`: it rebuilds everything with counters and runs the suite once more.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-cov}
cd "$SRC"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" -Db_coverage=true >/dev/null
ninja -C "$BUILD" >/dev/null
find "$BUILD" -name '*.gcda' -delete
meson test -C "$BUILD" --suite unit --print-errorlogs >/dev/null
ABOTA_BUILD="$BUILD" /usr/bin/python3 -m pytest -q -n "${E2E_JOBS:-2}" --dist loadfile \
    tests/e2e -m "not slow" | tail -1
gcovr -r . --filter lib/ --object-directory "$BUILD" -s "$BUILD" -o "$BUILD/coverage.txt" \
    | tail -3
# per area: lines hit / lines
/usr/bin/python3 - "$BUILD/coverage.txt" <<'PY'
import re, sys, collections
hit = collections.Counter(); tot = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"(lib/[^/\s]+)/\S+\s+(\d+)\s+(\d+)\s", line)
    if m:
        tot[m.group(1)] += int(m.group(2)); hit[m.group(1)] += int(m.group(3))
for area in sorted(tot, key=lambda a: -hit[a] / tot[a]):
    print(f"| {area} | {hit[area]} / {tot[area]} | {100 * hit[area] / tot[area]:.1f} % |")
print(f"| **all of lib/** | **{sum(hit.values())} / {sum(tot.values())}** | "
      f"**{100 * sum(hit.values()) / sum(tot.values()):.1f} %** |")
PY
