#!/usr/bin/env bash
# See heliod work on this machine: creates .venv if needed, installs heliod, runs the demo.
#   ./scripts/demo.sh [ARGS]   ARGS go to `heliod demo`
# Until `heliod demo` exists, runs the offline ledger on the sample data in examples/demo/
# (a copy in a temporary folder, so every run starts from an empty ledger).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

ensure_venv
ensure_installed ""
HELIOD="$VENV/bin/heliod"

help_text="$("$HELIOD" --help 2>&1)" || die "heliod does not start: $help_text"
if grep -Eq '^[[:space:]{,]*demo\b|[{,]demo[,}]' <<<"$help_text"; then
    step "heliod demo (Ctrl-C stops it)"
    exec "$HELIOD" demo "$@"
fi

# Fallback: the offline ledger. examples/demo/ holds heliod.toml, backers.csv (the
# config's only plant) or backers-<plant>.csv, and readings-<device>.csv.
EXAMPLE="$ROOT/examples/demo"
[ -f "$EXAMPLE/heliod.toml" ] || die "no 'heliod demo' command and no $EXAMPLE/heliod.toml yet"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/heliod-demo.XXXXXX")"
# Everything but a state folder left by an earlier run: each demo starts from nothing.
find "$EXAMPLE" -mindepth 1 -maxdepth 1 ! -name var -exec cp -R {} "$WORK/" \;
CONFIG="$WORK/heliod.toml"
heliod() { "$HELIOD" -c "$CONFIG" "$@"; }
mapfile -t PLANTS < <("$PY" -c 'import sys, tomllib
for p in tomllib.load(open(sys.argv[1], "rb")).get("plants", []): print(p["id"])' "$CONFIG")

step "offline ledger on examples/demo (state in $WORK)"
shopt -s nullglob
for csv in "$WORK"/backers.csv "$WORK"/backers-*.csv; do
    plant="$(basename "$csv" .csv)"
    plant="${plant#backers}"
    plant="${plant#-}"
    if [ -z "$plant" ]; then
        [ "${#PLANTS[@]}" -eq 1 ] || die "backers.csv needs one plant in heliod.toml; name it backers-<plant>.csv"
        plant="${PLANTS[0]}"
    fi
    step "heliod backers import --plant $plant $(basename "$csv")"
    heliod backers import --plant "$plant" "$csv"
done
for csv in "$WORK"/readings-*.csv; do
    device="$(basename "$csv" .csv)"
    device="${device#readings-}"
    step "heliod readings import --device $device $(basename "$csv")"
    heliod readings import --device "$device" "$csv"
done
step "heliod account"
heliod account
step "heliod balances"
heliod balances
step "heliod ledger verify"
heliod ledger verify
note "state kept in $WORK; try: $HELIOD -c $CONFIG ledger export"
