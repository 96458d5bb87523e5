"""The delivery loop alone in a process, for the SIGKILL test: `python -m tests.daemon.jobs.push_child
DB_URL PUSH_URL SECRET_FILE`. Prints "ready" once running; SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from heliod.adapters.platform import PlatformClient, PlatformSettings
from heliod.adapters.store import Store
from heliod.daemon.jobs.push import Pusher


def main(argv: list[str]) -> int:
    """Deliver until SIGTERM."""
    url, push_url, secret_file = argv
    secret = Path(secret_file).read_text(encoding="utf-8").strip()
    store = Store.open(url)
    client = PlatformClient(PlatformSettings(push_url, secret, timeout_s=5.0))
    pusher = Pusher(store, client, max_interval_s=0.2, first_delay_s=0.02)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    pusher.run(stop, poll_s=0.05)
    client.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
