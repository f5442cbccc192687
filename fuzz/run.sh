#!/bin/sh
# Runs the libFuzzer targets of a -Dfuzz=true build (see docs/security.md).
#   fuzz/run.sh BUILD fuzz SECONDS        each target for SECONDS
#   fuzz/run.sh BUILD smoke TOTAL_SECONDS every target over its corpus, then
#                                         TOTAL_SECONDS of fuzzing split across targets
# Working corpora grow in BUILD/corpus/<target> (seeded from fuzz/corpus/), crash
# inputs land in BUILD/artifacts/<target>/, logs in BUILD/fuzz-logs/.  Exits non-zero
# if any target crashed, leaked, timed out or ran out of memory.
set -u
B=$1
MODE=$2
SECS=$3
SRC=$(cd "$(dirname "$0")" && pwd)
TARGETS=${FUZZ_TARGETS:-"keyfile manifest config slot_status bundle squashfs verity fwu_metadata board http_range ddi server_range server_feedback server_multipart"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

n=0
for t in $TARGETS; do n=$((n + 1)); done
if [ "$MODE" = smoke ]; then
    per=$((SECS / n))
    [ "$per" -lt 1 ] && per=1
else
    per=$SECS
fi

mkdir -p "$B/fuzz-logs"
fail=0
printf '%-14s %8s %12s %10s %6s  %s\n' target seconds executions execs/s cov result
for t in $TARGETS; do
    bin="$B/fuzz/fuzz_$t"
    corpus="$B/corpus/$t"
    art="$B/artifacts/$t"
    log="$B/fuzz-logs/$t.log"
    mkdir -p "$corpus" "$art"
    rc=0
    if [ "$MODE" = smoke ]; then
        # Every input of the committed corpus and of the working corpus, once.
        "$bin" -runs=0 -timeout=30 -artifact_prefix="$art/" "$corpus" "$SRC/corpus/$t" \
            >"$log" 2>&1 || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        "$bin" -max_total_time="$per" -timeout=30 -print_final_stats=1 \
            -artifact_prefix="$art/" "$corpus" "$SRC/corpus/$t" >>"$log" 2>&1 || rc=$?
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then res=ok; else res="FAILED (rc $rc, see $log)"; fail=1; fi
    printf '%-14s %8s %12s %10s %6s  %s\n' "$t" "$per" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$res"
done
if [ "$fail" -ne 0 ]; then
    echo "fuzz: crash inputs are in $B/artifacts/; reproduce with $B/fuzz/fuzz_<target> <file>" >&2
fi
exit "$fail"
