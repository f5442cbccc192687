#!/bin/sh
# make bench: every benchmark, side by side with the peer tool, in one run.
# Results are printed and written to bench/work/*.md; docs/benchmarks.md
# quotes them with the command that produced them.
set -eu
build=${1:-build}
here=$(dirname "$0")
mkdir -p "$here/work"
echo "== bundle creation: abota bundle vs rauc bundle (512 MiB ext4 rootfs)"
/usr/bin/python3 "$here/bundle_create.py" "$build" --runs 3 --out "$here/work/bundle_create.md"
