#!/usr/bin/env bash
# See heliod work on this machine: creates .venv if needed, installs heliod, runs the demo.
#   ./scripts/demo.sh [ARGS]   ARGS go to `heliod demo` (e.g. --duration 120, --port 8080)
# The demo needs no other service and never touches a real ledger (docs/cli.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

ensure_venv
ensure_installed ""
step "heliod demo (Ctrl-C stops it)"
exec "$VENV/bin/heliod" demo "$@"
