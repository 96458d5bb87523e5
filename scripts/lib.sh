# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/demo.sh; sourced, never run.
# Expects ROOT (the repository) to be set by the caller.

VENV="${HELIOD_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
_APT_UPDATED=""

step() { printf '\n==> %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() {
    printf '\nFAILED: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly, through non-interactive sudo, or not at all (status 1).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

can_be_root() { [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

# True when the Debian package is installed (dpkg's "install ok installed").
deb_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Install the Debian packages among "$@" that are missing. Status 1 when some could not
# be installed (no dpkg, no root, apt failed); the message says what to install by hand.
apt_install() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1; then
        note "not a Debian system: install by hand if missing: $*"
        return 1
    fi
    for pkg in "$@"; do
        deb_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! can_be_root; then
        note "cannot install Debian packages (not root, no passwordless sudo)."
        note "install them by hand: sudo apt-get install -y ${missing[*]}"
        return 1
    fi
    note "installing Debian packages: ${missing[*]}"
    if [ -z "$_APT_UPDATED" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || return 1
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" </dev/null >/dev/null || return 1
}

# True when something accepts TCP connections on host:port within 2 s.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# The interpreter to build the venv with: python3.11, else python3 if it is 3.11 or newer.
find_python() {
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Create $VENV when it is missing or broken.
ensure_venv() {
    local python
    if [ -x "$PY" ] && "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        return 0
    fi
    python="$(find_python)" || die "heliod needs Python 3.11 or newer (apt-get install python3)"
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian splits venv/ensurepip out of the interpreter package.
        apt_install python3-venv || die "install python3-venv, then run me again"
    fi
    step "creating $VENV with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" || die "could not create the virtual environment $VENV"
}

# pip install -e ".[EXTRAS]" unless the same pyproject.toml was installed with those
# extras already (a stamp in the venv records it) and heliod still imports.
ensure_installed() {
    local extras="$1" spec="." stamp="$VENV/.heliod-installed" want
    [ -n "$extras" ] && spec=".[$extras]"
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) [$extras]"
    if [ -f "$stamp" ] && "$PY" -c 'import heliod.daemon' 2>/dev/null; then
        # A stamp with the test extras also satisfies a plain install.
        if [ "$(cat "$stamp")" = "$want" ] || { [ -z "$extras" ] && grep -q "^${want% *} " "$stamp"; }; then
            return 0
        fi
    fi
    step "installing heliod into $VENV (pip install -e '$spec')"
    # Quiet unless it fails: setuptools' build warnings would bury the checks' output.
    local log="$VENV/pip-install.log"
    if ! (cd "$ROOT" && "$PY" -m pip install -q --disable-pip-version-check -e "$spec") \
        >"$log" 2>&1; then
        cat "$log" >&2
        die "pip install -e '$spec' failed (its output is above)"
    fi
    printf '%s\n' "$want" >"$stamp"
}
