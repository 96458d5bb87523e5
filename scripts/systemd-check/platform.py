"""The crowdfunding platform inside the systemd check's container, on 127.0.0.1:8099.

Checks each push's HMAC-SHA256 signature (docs/platform.md) with the secret the host
wrote to /etc/heliod/platform.secret, and appends one JSON line per push to
/check/events.jsonl: a valid signature proves heliod read that secret, which it can
only have got through LoadCredential= (the file itself is root's, mode 0600).
"""

import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SECRET = Path("/etc/heliod/platform.secret").read_text().strip().encode()
EVENTS = Path("/check/events.jsonl")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        header = self.headers.get("Heliod-Signature", "")
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            mac = hmac.new(SECRET, f"{parts['t']}.".encode() + body, hashlib.sha256)
            valid = hmac.compare_digest(mac.hexdigest(), parts["v1"])
        except (KeyError, ValueError):
            valid = False
        line = {"key": self.headers.get("Idempotency-Key"), "valid": valid}
        with EVENTS.open("a") as out:
            out.write(json.dumps(line) + "\n")
        self.send_response(200 if valid else 401)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", 8099), Handler).serve_forever()
