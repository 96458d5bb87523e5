#!/bin/bash
# The checks of scripts/systemd-check.sh, run inside the booted container by the oneshot
# unit heliod-check.service once heliod.service has started. One line per check goes to
# /check/results ("PASS name: detail" or "FAIL name: detail"); the journal of heliod goes
# to /check/heliod.journal; then the container powers off.
set -uo pipefail

RESULTS=/check/results
CONFIG=/etc/heliod/heliod.toml
PY=/opt/heliod/bin/python
STATE=/var/lib/private/heliod
: >"$RESULTS"

pass() { printf 'PASS %s: %s\n' "$1" "$2" >>"$RESULTS"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$2" >>"$RESULTS"; }
prop() { systemctl show heliod -p "$1" --value; }
hd() { /usr/local/bin/heliod -c "$CONFIG" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
active() { [ "$(systemctl is-active heliod)" = active ]; }

# wait_until SECONDS COMMAND...: status 0 once COMMAND succeeds, 1 after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

# GET /healthz from inside: "<http status> <status> <store state> <inv1 state>".
healthz() {
    "$PY" - <<'EOF'
import json, urllib.error, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:8080/healthz", timeout=5) as r:
        code, h = r.status, json.loads(r.read())
except urllib.error.HTTPError as exc:
    code, h = exc.code, {}
except OSError:
    code, h = 0, {}
print(code, h.get("status"), (h.get("store") or {}).get("state"),
      (h.get("devices") or {}).get("inv1", {}).get("state"))
EOF
}

# Mints in the ledger, read as root through the command line: "<count> <contiguous>".
mints() {
    hd ledger export --format json 2>/dev/null | "$PY" -c '
import json, sys
rows = json.load(sys.stdin)["mints"]
k = sorted(r["mwh_index"] for r in rows if r["plant"] == "check")
print(len(k), "yes" if k == list(range(1, len(k) + 1)) else "NO")' || echo "0 unreadable"
}
more_mints_than() { [ "$(mints | cut -d' ' -f1)" -gt "$1" ]; }
signed_push() { grep -q '"valid": true' /check/events.jsonl 2>/dev/null; }
healthy() { [ "$(healthz | cut -d' ' -f1,4)" = "200 ok" ]; }

# 1. READY: Type=notify, so "active" means heliod sent READY=1.
if wait_until 120 active; then
    started=$(prop ExecMainStartTimestampMonotonic)
    ready=$(prop ActiveEnterTimestampMonotonic)
    took=$(awk -v a="$started" -v b="$ready" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
    pass ready "active (Type=notify) ${took} s after ExecStart; STATUS=\"$(prop StatusText)\""
else
    fail ready "not active after 120 s: $(systemctl is-active heliod); $(prop StatusText)"
fi
pid=$(prop MainPID)

# 2. The hardening leaves it working: Python, SQLite in the state dir, TCP both ways.
if wait_until 60 healthy; then
    pass hardened "GET /healthz: $(healthz) (HTTP, store, inverter over Modbus TCP); $(
        systemd-analyze security heliod 2>/dev/null | tail -1 | sed 's/^→ //')"
else
    fail hardened "GET /healthz answered: $(healthz)"
fi

limit=$(awk '/^Max open files/ { print $4 "/" $5 }' "/proc/$pid/limits")
want=$(prop LimitNOFILE)
if [ "$limit" = "$want/$want" ]; then
    pass limits "open files limited to $want (LimitNOFILE=)"
else
    fail limits "Max open files $limit, LimitNOFILE=$want"
fi

# 3. DynamicUser owns the state directory, and every file in it.
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
owner=$(stat -c '%u' "$STATE" 2>/dev/null)
strays=$(find "$STATE" ! -uid "$uid" 2>/dev/null | head -5 | tr '\n' ' ')
if [ -L /var/lib/heliod ] && [ "$owner" = "$uid" ] && [ "$uid" -ge 61184 ] &&
    [ "$uid" -le 65519 ] && [ -z "$strays" ] && [ -f "$STATE/heliod.db" ]; then
    pass dynamic-user "runs as uid $uid (dynamic: 61184-65519), which owns $STATE ($(
        stat -c '%a' "$STATE")) and every file in it; /var/lib/heliod -> $(readlink /var/lib/heliod)"
else
    fail dynamic-user "process uid $uid, $STATE owned by ${owner:-nothing}, symlink: $(
        readlink /var/lib/heliod), not the dynamic user's: ${strays:-none}"
fi

# 4. LoadCredential=: the platform secret (root's file, 0600) signs the pushes.
if wait_until 90 signed_push && ! grep -q '"valid": false' /check/events.jsonl; then
    pass credentials "$(grep -c '"valid": true' /check/events.jsonl) pushes signed with the secret from \$CREDENTIALS_DIRECTORY (/etc/heliod/platform.secret is root's, mode $(
        stat -c '%a' /etc/heliod/platform.secret))"
else
    fail credentials "no push with a valid signature: $(tail -3 /check/events.jsonl 2>/dev/null)"
fi
if [ -f /etc/heliod/log-signing.pem ]; then
    # The daemon signs the ledger's log with the credential: a proof bundle it built
    # checks against the verifier key of /etc/heliod/log-signing.pem (root's, 0600).
    vkey=$(hd log key --plant check 2>/dev/null | tail -1)
    if hd ledger prove --plant check --backer alice -o /tmp/proof.json >/tmp/prove.txt 2>&1 &&
        hd ledger check-proof /tmp/proof.json --key "$vkey" >/tmp/check-proof.txt 2>&1 &&
        [ ! -e "$STATE/log-signing.pem" ]; then
        pass log-key "a proof bundle of the daemon's log checks with the credential's key ($vkey)"
    else
        fail log-key "key $vkey: $(tail -2 /tmp/prove.txt /tmp/check-proof.txt | tr '\n' ' '); state dir: $(
            ls "$STATE" | tr '\n' ' ')"
    fi
fi

# 5. systemctl stop: SIGTERM, clean exit within 10 s.
wait_until 60 more_mints_than 1
t0=$(now)
systemctl stop heliod
took=$(since "$t0")
result="$(prop Result) $(prop ExecMainStatus)"
if awk -v t="$took" 'BEGIN { exit !(t < 10) }' && [ "$result" = "success 0" ]; then
    pass stop "systemctl stop took $took s (exit 0)"
else
    fail stop "systemctl stop took $took s, result: $result"
fi

# 6. The ledger, checked as an operator would (root, the command line, daemon stopped).
read -r k1 contiguous <<<"$(mints)"
if hd ledger verify >/tmp/verify.txt 2>&1 && [ "$contiguous" = yes ]; then
    pass verify-stopped "heliod ledger verify OK with $k1 mints (MWh 1..$k1)"
else
    fail verify-stopped "$(tail -3 /tmp/verify.txt) (mints $k1, 1..K: $contiguous)"
fi

# 7. systemctl restart keeps the ledger and goes on from it.
systemctl start heliod
wait_until 60 more_mints_than "$k1"
t0=$(now)
systemctl restart heliod
took=$(since "$t0")
read -r k2 _ <<<"$(mints)"
wait_until 60 more_mints_than "$k2"
read -r k3 contiguous <<<"$(mints)"
if active && [ "$k3" -gt "$k2" ] && [ "$k2" -gt "$k1" ] && hd ledger verify >/tmp/verify.txt 2>&1 &&
    [ "$contiguous" = yes ]; then
    pass restart "restart in $took s; mints $k1 -> $k2 before it -> $k3 after, MWh 1..$k3 once each, ledger verify OK"
else
    fail restart "active: $(systemctl is-active heliod), mints $k1/$k2/$k3 (1..K: $contiguous), $(
        tail -2 /tmp/verify.txt)"
fi

# 8. The watchdog: a daemon whose work stops (SIGSTOP) is killed and restarted.
pid=$(prop MainPID)
n0=$(prop NRestarts)
watchdog_usec=$(prop WatchdogUSec)
restarted() { [ "$(prop NRestarts)" -gt "$n0" ] && active && [ "$(prop MainPID)" != "$pid" ]; }
t0=$(now)
kill -STOP "$pid"
if wait_until 180 restarted; then
    took=$(since "$t0")
    read -r k4 _ <<<"$(mints)"
    wait_until 60 more_mints_than "$k4"
    read -r k5 contiguous <<<"$(mints)"
    if hd ledger verify >/tmp/verify.txt 2>&1 && [ "$contiguous" = yes ] && [ "$k5" -gt "$k4" ]; then
        pass watchdog "SIGSTOP of PID $pid: restarted as PID $(prop MainPID) after $took s (WatchdogSec=$watchdog_usec, NRestarts $n0 -> $(
            prop NRestarts)); mints go on ($k5), ledger verify OK"
    else
        fail watchdog "restarted, but mints $k4 -> $k5 (1..K: $contiguous), $(tail -2 /tmp/verify.txt)"
    fi
else
    fail watchdog "PID $pid stopped $(since "$t0") s ago, not restarted: NRestarts $(
        prop NRestarts), $(systemctl is-active heliod)"
    kill -CONT "$pid" 2>/dev/null
fi

journalctl -u heliod --no-pager -o short-monotonic >/check/heliod.journal 2>&1
systemctl show heliod >/check/heliod.show 2>&1
echo done >>"$RESULTS"
systemctl poweroff --no-block
