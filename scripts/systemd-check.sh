#!/usr/bin/env bash
# heliod under a real systemd: boots a minimal Debian bookworm container with systemd as
# PID 1, installs heliod's wheel and systemd/heliod.service as docs/operations.md says,
# and checks READY, the watchdog, DynamicUser, LoadCredential=, stop and restart times,
# that a restart keeps the ledger, and that the hardening leaves the daemon working.
#
#   sudo scripts/systemd-check.sh            (root is needed: debootstrap, systemd-nspawn)
#
# The container's root file system is made once with debootstrap (Debian's packages) and
# cached in ${XDG_CACHE_HOME:-~/.cache}/heliod/systemd-check/; each run works on a copy.
# Environment: HELIOD_REQUIRE_SERVICES=1 turns a missing capability (not root, no
# debootstrap or systemd-nspawn, no network for the first debootstrap, a machine that
# cannot run containers) from a skip into a failure. HELIOD_SYSTEMD_CHECK_KEEP=1 keeps the
# work folder. Exit 0: every check passed (or skipped), 1: a check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
HERE="$ROOT/scripts/systemd-check"
STRICT="${HELIOD_REQUIRE_SERVICES:-0}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/heliod/systemd-check"
# What the cached root file system holds; a change of this list makes a new one.
PACKAGES="systemd,systemd-sysv,dbus,python3,python3-venv"
BASE="$CACHE/bookworm"
BOOT_TIMEOUT="${HELIOD_SYSTEMD_CHECK_TIMEOUT:-900}"
STARTED=$SECONDS

# A capability this machine lacks: a skip, or a failure under HELIOD_REQUIRE_SERVICES=1.
missing() {
    if [ "$STRICT" = 1 ]; then
        die "systemd check: $* (HELIOD_REQUIRE_SERVICES=1)"
    fi
    printf '\nSKIPPED systemd check: %s\n' "$*" >&2
    exit 0
}

[ "$(id -u)" -eq 0 ] || missing "needs root (debootstrap and systemd-nspawn); run it with sudo"
command -v debootstrap >/dev/null && command -v systemd-nspawn >/dev/null ||
    apt_install debootstrap systemd-container ||
    missing "cannot install Debian's debootstrap and systemd-container"

# The root file system, once: debootstrap into a temporary folder, then move it in place.
base_rootfs() {
    if [ -f "$BASE/.heliod-packages" ] && [ "$(cat "$BASE/.heliod-packages")" = "$PACKAGES" ]; then
        return 0
    fi
    step "debootstrap: a minimal Debian bookworm with $PACKAGES (once, cached in $CACHE)"
    mkdir -p "$CACHE"
    rm -rf "$BASE" "$BASE.tmp"
    # The mirror is debootstrap's default unless HELIOD_DEBIAN_MIRROR names another.
    if ! debootstrap --variant=minbase --include="$PACKAGES" bookworm "$BASE.tmp" \
        ${HELIOD_DEBIAN_MIRROR:+"$HELIOD_DEBIAN_MIRROR"} >"$CACHE/debootstrap.log" 2>&1; then
        tail -5 "$CACHE/debootstrap.log" >&2
        rm -rf "$BASE.tmp"
        missing "debootstrap failed (no network to Debian's archive?), see $CACHE/debootstrap.log"
    fi
    rm -rf "$BASE.tmp/var/cache/apt/archives/"*.deb
    printf '%s\n' "$PACKAGES" >"$BASE.tmp/.heliod-packages"
    mv "$BASE.tmp" "$BASE"
}
base_rootfs

NSPAWN=(systemd-nspawn --quiet --register=no --keep-unit)
"${NSPAWN[@]}" -D "$BASE" --read-only /bin/true >/dev/null 2>&1 ||
    missing "systemd-nspawn cannot start a container on this machine"

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/heliod-systemd-check.XXXXXX")"
NSPAWN_PID=""
cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill "$NSPAWN_PID" 2>/dev/null || true
        sleep 3
        kill -9 "$NSPAWN_PID" 2>/dev/null || true
    fi
    if [ "${HELIOD_SYSTEMD_CHECK_KEEP:-0}" = 1 ]; then
        note "work folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
RFS="$WORK/rootfs"
mkdir -p "$WORK/wheels" "$WORK/check"

step "building heliod's wheel and its dependencies' (pip wheel)"
PYTHON="$PY"
[ -x "$PYTHON" ] || PYTHON="$(find_python)" || die "no Python 3.11 to build the wheel with"
# The container's python3 is Debian's 3.11: wheels built by another version would not fit.
# Dependencies' wheels are kept in the cache: offline first, the index when one is new.
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS"
rm -f "$WHEELS"/heliod-*.whl
wheel() {
    "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --find-links "$WHEELS" \
        -w "$WHEELS" "$@" >>"$WORK/pip-wheel.log" 2>&1
}
# From a copy of the working tree: a build in place leaves build/, whose stale files
# (a module since removed) would end up in the next wheel.
mkdir -p "$WORK/src"
tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
    -cf - . | tar -C "$WORK/src" -xf -
if "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    wheel --no-index "$WORK/src" || wheel "$WORK/src" setuptools wheel ||
        { cat "$WORK/pip-wheel.log" >&2; die "pip wheel failed"; }
    PIP_SOURCE=(--no-index --find-links /mnt/wheels)
else
    wheel --no-deps "$WORK/src" || { cat "$WORK/pip-wheel.log" >&2; die "pip wheel failed"; }
    PIP_SOURCE=(--find-links /mnt/wheels)
fi
cp "$WHEELS"/*.whl "$WORK/wheels/"
note "$(find "$WORK/wheels" -name 'heliod-*.whl' -printf '%f')"

step "installing heliod in a copy of the root file system"
cp -a --reflink=auto "$BASE" "$RFS"
# As docs/operations.md says: a venv in /opt/heliod, the command in /usr/local/bin.
"${NSPAWN[@]}" -D "$RFS" --bind-ro="$WORK/wheels:/mnt/wheels" /bin/sh -ec "
    python3 -m venv /opt/heliod
    /opt/heliod/bin/pip install --quiet --disable-pip-version-check ${PIP_SOURCE[*]} heliod
    ln -sf /opt/heliod/bin/heliod /usr/local/bin/heliod" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; die "installing the wheel in the container failed"; }

# The test plant: one inverter (simulated in the container), a platform that checks
# signatures, the secrets as root's files handed over with LoadCredential=.
install -d -m 0755 "$RFS/etc/heliod" "$RFS/usr/local/lib/heliod-check"
install -m 0600 /dev/stdin "$RFS/etc/heliod/platform.secret" <<<"$(openssl rand -hex 32 2>/dev/null ||
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOKEN_SHA256="$(printf 'systemd-check-token' | sha256sum | cut -d' ' -f1)"
LOG_SECTION=""
CREDENTIALS="LoadCredential=platform.secret:/etc/heliod/platform.secret"
# The ledger's signing key as a credential too, when this heliod signs its ledger.
if "${NSPAWN[@]}" -D "$RFS" /usr/local/bin/heliod log key --help >/dev/null 2>&1; then
    "${NSPAWN[@]}" -D "$RFS" /opt/heliod/bin/python -c '
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
pem = Ed25519PrivateKey.generate().private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
open("/etc/heliod/log-signing.pem", "wb").write(pem)' && chmod 0600 "$RFS/etc/heliod/log-signing.pem"
    LOG_SECTION=$'[log]\nsigning_key_file = "log-signing.pem"\n'
    CREDENTIALS+=$'\nLoadCredential=log-signing.pem:/etc/heliod/log-signing.pem'
fi
cat >"$RFS/etc/heliod/heliod.toml" <<EOF
# The systemd check's plant (scripts/systemd-check.sh).
[daemon]
state_dir = "/var/lib/heliod"
log_level = "info"

[api]
listen = "127.0.0.1:8080"
tokens = [{ name = "check", sha256 = "$TOKEN_SHA256" }]

[platform]
push_url = "http://127.0.0.1:8099/events"
secret_file = "platform.secret"
timeout = "2s"
retry_max_interval = "2s"

$LOG_SECTION
[[plants]]
id = "check"
capacity_kw = 1000000
timezone = "Europe/Paris"
energy_devices = ["inv1"]

[plants.reward]
symbol = "CHK"
tokens_per_mwh = "1"
decimals = 8

[[plants.devices]]
id = "inv1"
protocol = "modbus"
host = "127.0.0.1"
port = 1502
poll_interval = "500ms"
timeout = "1s"
EOF
chmod 0644 "$RFS/etc/heliod/heliod.toml"
install -m 0644 "$ROOT/systemd/heliod.service" "$RFS/etc/systemd/system/heliod.service"
install -d "$RFS/etc/systemd/system/heliod.service.d"
printf '[Service]\n%s\n' "$CREDENTIALS" >"$RFS/etc/systemd/system/heliod.service.d/credentials.conf"
install -m 0755 "$HERE/check.sh" "$RFS/usr/local/lib/heliod-check/check.sh"
install -m 0644 "$HERE/inverter.py" "$HERE/platform.py" "$RFS/usr/local/lib/heliod-check/"
install -d "$RFS/etc/systemd/system/multi-user.target.wants"
for unit in heliod-check-inverter heliod-check-platform heliod-check; do
    install -m 0644 "$HERE/$unit.service" "$RFS/etc/systemd/system/"
    ln -sf "/etc/systemd/system/$unit.service" "$RFS/etc/systemd/system/multi-user.target.wants/"
done
ln -sf /etc/systemd/system/heliod.service "$RFS/etc/systemd/system/multi-user.target.wants/"
# No getty on the console, no waiting for a network the container does not have.
ln -sf /dev/null "$RFS/etc/systemd/system/console-getty.service"
ln -sf /dev/null "$RFS/etc/systemd/system/systemd-networkd-wait-online.service"
printf 'heliod-check\n' >"$RFS/etc/hostname"

# The share register before the first start, as the README says (root, from a shell):
# the state directory it creates is handed to the dynamic user by systemd at start.
printf 'backer,amount\nalice,3\nbob,2\n' >"$RFS/etc/heliod/backers.csv"
"${NSPAWN[@]}" -D "$RFS" /usr/local/bin/heliod -c /etc/heliod/heliod.toml \
    backers import --plant check /etc/heliod/backers.csv >"$WORK/backers.log" 2>&1 ||
    { cat "$WORK/backers.log" >&2; die "heliod backers import failed"; }

step "booting the container (systemd-nspawn --boot), the checks run inside"
"${NSPAWN[@]}" --boot --private-network -D "$RFS" --bind="$WORK/check:/check" \
    >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
deadline=$((SECONDS + BOOT_TIMEOUT))
while kill -0 "$NSPAWN_PID" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        note "the container did not finish within $BOOT_TIMEOUT s: stopping it"
        kill "$NSPAWN_PID" 2>/dev/null || true
        break
    fi
    sleep 2
done
wait "$NSPAWN_PID" 2>/dev/null || true
NSPAWN_PID=""

step "systemd check: results"
results="$WORK/check/results"
if [ ! -s "$results" ]; then
    tail -40 "$WORK/console.log" >&2
    [ -f "$WORK/check/check.log" ] && tail -20 "$WORK/check/check.log" >&2
    die "the checks did not run (the container's console is above)"
fi
version="$(find "$WORK/wheels" -name 'heliod-*.whl' -printf '%f' | cut -d- -f2)"
printf 'heliod %s, %s in a Debian %s container (systemd-nspawn --boot)\n' "$version" \
    "$(systemd-nspawn --version | head -1 | cut -d' ' -f1-2)" "$(cat "$BASE/etc/debian_version")"
grep -E '^(PASS|FAIL) ' "$results"
passed=$(grep -c '^PASS ' "$results" || true)
failed=$(grep -c '^FAIL ' "$results" || true)
if ! grep -q '^done$' "$results"; then
    failed=$((failed + 1))
    printf 'FAIL finished: the checks stopped before the end (see check.log)\n'
    [ -f "$WORK/check/check.log" ] && tail -20 "$WORK/check/check.log"
fi
if [ "$failed" -gt 0 ]; then
    printf '\nheliod journal (last 40 lines):\n'
    tail -40 "$WORK/check/heliod.journal" 2>/dev/null || true
    HELIOD_SYSTEMD_CHECK_KEEP=1
fi
if [ "$failed" -eq 0 ]; then
    printf '\nsystemd check: all %d checks passed in %d s\n' "$passed" "$((SECONDS - STARTED))"
else
    printf '\nsystemd check FAILED: %d of %d checks (%d s); work folder: %s\n' "$failed" \
        "$((passed + failed))" "$((SECONDS - STARTED))" "$WORK"
fi
[ "$failed" -eq 0 ]
