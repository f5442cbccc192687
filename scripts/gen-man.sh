#!/bin/sh
# Generates the man pages from the programs' --help output with help2man, so
# the pages and `--help` are one source:
#   abota.1, one abota-<verb>.1 per verb listed by `abota --help`,
#   abota-sim.1, and abotad.8 / abota-server.8 when those programs are built.
#
#   sh scripts/gen-man.sh [BUILD_DIR [OUT_DIR]]     (defaults: build, man)
#   make man                                        (BUILD_DIR = $(BUILD))
#
# The committed man/ pages are this script's output; tests/e2e/test_docs.py
# checks that they are up to date (ignoring the date line).  Needs help2man
# (Debian package help2man, in scripts/install-deps.sh).
set -eu

build=${1:-build}
out=${2:-man}
src=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "gen-man: $*" >&2; exit 1; }

command -v help2man >/dev/null 2>&1 || die "help2man not found (apt-get install help2man)"
abota="$build/src/abota/abota"
sim="$build/src/abota-sim/abota-sim"
abotad="$build/src/abotad/abotad"
server="$build/src/abota-server/abota-server"
[ -x "$abota" ] || die "$abota not built (run make)"
[ -x "$sim" ] || die "$sim not built (run make)"

# Absolute paths: the wrappers below run from another directory.
abota=$(cd "$(dirname "$abota")" && pwd)/abota
version=$("$abota" --version | sed -n 's/^abota //p')
[ -n "$version" ] || die "cannot read the version from '$abota --version'"

mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/abota-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Verbs and their one-line summaries: the "Verbs:" block of `abota --help`.
"$abota" --help | awk '/^Verbs:/ { on = 1; next } on && /^  [a-z]/ {
    verb = $1; sub(/^  [a-z][a-z0-9-]*[ ]+/, ""); print verb "\t" $0 }' > "$tmp/verbs"
[ -s "$tmp/verbs" ] || die "no verbs found in 'abota --help'"

# The user documentation page for a verb (docs/ in the source tree).
doc_for() {
    case $1 in
    bundle|info|extract|resign) echo bundles.md ;;
    install) echo install.md ;;
    status) echo status.md ;;
    fwu) echo fwu.md ;;
    hawkbit) echo hawkbit.md ;;
    service) echo dbus.md ;;
    *) echo cli.md ;;
    esac
}

# run_h2m OUT NAME SECTION DESCRIPTION PROGRAM [help2man options...]
run_h2m() {
    o=$1; shift; name=$1; shift; sect=$1; shift; desc=$1; shift; prog=$1; shift
    help2man --no-info --no-discard-stderr --section="$sect" --name="$desc" \
        --version-string="$version" "$@" --output="$o" "$prog" ||
        die "help2man failed for $name"
    # help2man prints the program path it ran for a wrapper as the page title;
    # nothing machine-specific may end up in a committed page.
    if grep -q "$tmp" "$o"; then die "$o mentions the temporary directory"; fi
}

# --- abota-<verb>.1 -------------------------------------------------------------
see_also=""
while IFS='	' read -r verb summary; do
    w="$tmp/abota-$verb"
    printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$abota" "$verb" > "$w"
    chmod +x "$w"
    inc="$tmp/abota-$verb.h2m"
    {
        echo "[SEE ALSO]"
        echo ".BR abota (1)."
        echo ".PP"
        d=$(doc_for "$verb")
        [ -f "$src/docs/$d" ] || d=cli.md
        if [ "$d" = cli.md ]; then
            echo "docs/cli.md in the abota source tree."
        else
            echo "docs/$d and docs/cli.md in the abota source tree."
        fi
    } > "$inc"
    run_h2m "$out/abota-$verb.1" "abota-$verb" 1 "abota $verb: $summary" "$w" \
        --include="$inc"
    see_also="$see_also.BR abota-$verb (1),
"
done < "$tmp/verbs"

# --- abota.1 ---------------------------------------------------------------------
cat > "$tmp/abota.h2m" <<EOF
[DESCRIPTION]
abota installs signed, RAUC-compatible update bundles into the inactive bank of
an A/B device, lets the boot firmware try the new bank, and accepts it only
after a health check. Each verb has its own page, e.g.
.BR abota-install (1);
.B abota VERB --help
prints the same text.

[EXIT STATUS]
0 success, 1 failure (one message on stderr), 2 usage error, 137 after a
simulated power cut (ABOTA_POWERCUT).

[ENVIRONMENT]
.TP
.B ABOTA_LOG
log level on stderr: error, warning (default), info, debug.
.TP
.BR ABOTA_KEY_PASSPHRASE ", " RAUC_KEY_PASSPHRASE
passphrase of the signing key (bundle, resign).
.TP
.B ABOTA_BOARDS_DIR
colon-separated directories searched for board profiles.
.TP
.BR ABOTA_POWERCUT ", " ABOTA_POWERCUT_LOG
fault injection: cut the power at write point N[:BYTES]; list the write points.

[FILES]
.TP
.I /etc/abota/system.conf
system configuration (RAUC's system.conf; RAUC's locations are searched next).

[SEE ALSO]
.nh
$see_also.BR abota-sim (1),
.BR abotad (8),
.BR abota-server (8),
.BR rauc (1).
.PP
docs/cli.md, docs/getting-started.md and docs/index.md in the abota source tree.
EOF
run_h2m "$out/abota.1" abota 1 "robust A/B over-the-air updates for embedded Linux" \
    "$abota" --include="$tmp/abota.h2m"

# --- abota-sim.1 -----------------------------------------------------------------
cat > "$tmp/abota-sim.h2m" <<'EOF'
[SEE ALSO]
.nh
.BR abota (1),
.BR abota-fwu (1).
.PP
docs/fwu.md (section 5, the simulator) and docs/boards/ in the abota source tree.
EOF
run_h2m "$out/abota-sim.1" abota-sim 1 "simulated STM32MP board for A/B update tests" \
    "$(cd "$(dirname "$sim")" && pwd)/abota-sim" --include="$tmp/abota-sim.h2m"

# --- abotad.8 / abota-server.8 (built only when their dependencies are present) --
if [ -x "$abotad" ]; then
    cat > "$tmp/abotad.h2m" <<'EOF'
[FILES]
.TP
.I /etc/abota/hawkbit.conf
agent configuration (rauc-hawkbit-updater's keys plus abota's).
.TP
.I /var/lib/abota/hawkbit.state
durable agent state (in system.conf's data-directory when set).

[SEE ALSO]
.nh
.BR abota (1),
.BR abota-hawkbit (1),
.BR abota-server (8).
.PP
docs/hawkbit.md in the abota source tree; systemd/abotad.service.
EOF
    run_h2m "$out/abotad.8" abotad 8 "abota's update agent for hawkBit (DDI) servers" \
        "$(cd "$(dirname "$abotad")" && pwd)/abotad" --include="$tmp/abotad.h2m"
fi
if [ -x "$server" ]; then
    cat > "$tmp/abota-server.h2m" <<'EOF'
[DESCRIPTION]
abota-server serves update bundles to devices over hawkBit's Direct Device
Integration (DDI) API, offers a subset of hawkBit's Management API and a web UI.
State lives in the --data directory (SQLite database and artifacts).

[SEE ALSO]
.nh
.BR abotad (8),
.BR abota (1).
.PP
docs/server.md in the abota source tree (every option, API paths, data layout).
EOF
    run_h2m "$out/abota-server.8" abota-server 8 "deployment server speaking hawkBit's DDI API" \
        "$(cd "$(dirname "$server")" && pwd)/abota-server" --include="$tmp/abota-server.h2m"
fi

# Pages of verbs abota no longer has.
for f in "$out"/abota-*.1; do
    [ -e "$f" ] || continue
    v=${f##*/abota-}; v=${v%.1}
    [ "$v" = sim ] && continue
    if ! cut -f1 "$tmp/verbs" | grep -qx "$v"; then
        echo "gen-man: removing $f (no verb '$v' any more)"
        rm -f "$f"
    fi
done

ls "$out"
