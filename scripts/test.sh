#!/usr/bin/env bash
# The whole check, as CI runs it: system packages, venv, lint, types, import contracts, tests.
#   ./scripts/test.sh                 everything
#   ./scripts/test.sh -x -q tests/rewards   extra arguments go to pytest
# Environment: HELIOD_NO_APT=1 skips the Debian step; HELIOD_PYTEST_ONLY=1 runs pytest
# without the lint, type, import and bench checks; HELIOD_REQUIRE_SERVICES=1 (CI) turns
# "service missing" skips into failures; HELIOD_TEST_POSTGRES_URL picks the test server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"
cd "$ROOT"
STARTED=$SECONDS
STRICT="${HELIOD_REQUIRE_SERVICES:-0}"

# Debian packages the tests drive as real services or browsers.
SYSTEM_PACKAGES=(socat mosquitto victoria-metrics chromium chromium-driver openssl systemd faketime)

system_packages() {
    local wanted=("${SYSTEM_PACKAGES[@]}")
    # A PostgreSQL server is needed only when none answers already (CI machines have one).
    if ! port_open 127.0.0.1 5432 && ! command -v pg_ctlcluster >/dev/null 2>&1; then
        wanted+=(postgresql)
    fi
    step "Debian packages: ${wanted[*]}"
    if ! apt_install "${wanted[@]}"; then
        [ "$STRICT" = 1 ] && die "could not install the Debian packages the tests need"
        note "going on: tests needing a missing service will be skipped"
    fi
}

start_postgres() {
    port_open 127.0.0.1 5432 && return 0
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        local version
        version="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)"
        step "starting PostgreSQL $version/main"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
            note "could not start the cluster (root is needed)"
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            port_open 127.0.0.1 5432 && return 0
            sleep 0.5
        done
    fi
    note "no PostgreSQL server on 127.0.0.1:5432: the postgres tests will skip (fail under CI)"
}

# Export HELIOD_TEST_POSTGRES_URL, a server URL whose role may CREATE DATABASE: the tests
# create a throwaway database there and drop it afterwards.
postgres_url() {
    local probe url
    probe='import sys, psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://", 1)
with psycopg.connect(url, connect_timeout=3) as conn:
    conn.execute("select 1")'
    if [ -n "${HELIOD_TEST_POSTGRES_URL:-}" ]; then
        "$PY" -c "$probe" "$HELIOD_TEST_POSTGRES_URL" 2>/dev/null ||
            note "HELIOD_TEST_POSTGRES_URL does not answer: postgres tests will skip or fail"
        return 0
    fi
    port_open 127.0.0.1 5432 || return 0
    # Machines prepared for CI trust local TCP connections as the postgres superuser.
    url="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if ! "$PY" -c "$probe" "$url" 2>/dev/null; then
        # A stock Debian cluster asks for passwords over TCP: make a test role through
        # the local socket (peer authentication as the postgres user) once.
        url="postgresql+psycopg://heliod_test:heliod_test@127.0.0.1:5432/postgres"
        if ! "$PY" -c "$probe" "$url" 2>/dev/null && can_be_root && command -v psql >/dev/null; then
            note "creating the PostgreSQL role heliod_test (CREATEDB) for the tests"
            as_root runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c \
                "CREATE ROLE heliod_test LOGIN CREATEDB PASSWORD 'heliod_test'" >/dev/null ||
                true
        fi
        "$PY" -c "$probe" "$url" 2>/dev/null || {
            note "cannot log in to PostgreSQL on 127.0.0.1:5432; set HELIOD_TEST_POSTGRES_URL"
            return 0
        }
    fi
    export HELIOD_TEST_POSTGRES_URL="$url"
    note "PostgreSQL for tests: ${url/:heliod_test@/:***@}"
}

# Run one check; on failure stop everything with the check's name and a hint.
check() {
    local name="$1" hint="$2"
    shift 2
    step "$name"
    local started=$SECONDS
    if "$@"; then
        note "ok ($((SECONDS - started)) s)"
    else
        local rc=$?
        die "$name (exit $rc). $hint"
    fi
}

run_pytest() {
    local rc=0
    local args=()
    [ "${CI:-}" = true ] && args+=(--durations=15)
    "$VENV/bin/pytest" "${args[@]}" "$@" || rc=$?
    if [ "$rc" -eq 5 ]; then
        printf 'pytest collected no test\n' >&2
    fi
    return "$rc"
}

if [ "${HELIOD_NO_APT:-0}" != 1 ]; then
    system_packages
fi
start_postgres
ensure_venv
ensure_installed test
postgres_url

export PATH="$VENV/bin:$PATH"
TREE="$("$PY" scripts/srctree.py tree)"

# HELIOD_PYTEST_ONLY=1 (CI's second step) runs pytest alone: the checks below ran in the
# first step on the same tree.
if [ "${HELIOD_PYTEST_ONLY:-0}" != 1 ]; then
    check "ruff check" "fix the findings (many: .venv/bin/ruff check --fix .)" \
        "$VENV/bin/ruff" check .
    check "ruff format --check" "run .venv/bin/ruff format ." \
        "$VENV/bin/ruff" format --check .
    check "mypy (heliod.daemon, heliod.adapters, heliod.rewards, heliod.profiles)" \
        "mypy is strict over every package; see [tool.mypy] in pyproject.toml" \
        "$PY" scripts/srctree.py mypy
    check "lint-imports (import contracts)" "see [tool.importlinter] in pyproject.toml" \
        env PYTHONPATH="$TREE" "$VENV/bin/lint-imports" --no-cache
    # A short run of the Modbus bench (10 devices, about 25 s): its ratio is printed; it fails
    # only above 3× the bare pymodbus loop's CPU per poll, a regression as large as the
    # thread-per-waiting-link one (4.3×) that once landed unseen (docs/performance.md).
    check "Modbus CPU per poll against the bare loop (short bench, fails above 3×)" \
        "profile the poll path: bench/modbus_poll.py, docs/performance.md (Modbus polling)" \
        "$PY" bench/modbus_poll.py --devices 10 --seconds 4 --warmup 1 --rounds 3 --max-ratio 3
fi
check "pytest" "see the failures above" run_pytest "$@"

printf '\nall checks passed in %d s\n' "$((SECONDS - STARTED))" >&2
