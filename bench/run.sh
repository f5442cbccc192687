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
echo "== install: abota install vs rauc install (same RAUC-built bundle, 512 MiB rootfs)"
/usr/bin/python3 "$here/install.py" "$build" --runs 3 --out "$here/work/install.md"
echo "== resume: install finished after a power cut at 90% vs a full install"
/usr/bin/python3 "$here/resume.py" "$build" --runs 3 --out "$here/work/resume.md"
echo "== abota-server: 2,000 devices polling (wrk) while one downloads and posts feedback"
/usr/bin/python3 "$here/server_load.py" "$build" --devices 2000 --seconds 60 --out "$here/work/server_load.md"
/usr/bin/python3 "$here/plot.py" --work "$here/work"
