"""A webhook receiver for stockade's job-end notifications, with the signature check.

    NOTIFY_SECRET=change-me python3 receiver.py [PORT]

Prints ``listening on PORT``, then one line per verified notification:
``DELIVERY JOB STATE REASON``. A post whose ``X-Stockade-Signature-256``
does not match the HMAC-SHA256 of the exact body under ``NOTIFY_SECRET``
gets 401; a delivery id seen before is acknowledged and not printed again
(delivery is at least once). Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["NOTIFY_SECRET"].encode()
SEEN: set[str] = set()


def verified(body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time compare)."""
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(header.encode(), expected.encode())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
        if not verified(body, self.headers.get("X-Stockade-Signature-256")):
            self.send_response(401)
        else:
            delivery = self.headers.get("X-Stockade-Delivery", "")
            if delivery not in SEEN:
                SEEN.add(delivery)
                job = json.loads(body)["job"]
                print(delivery, job["id"], job["state"], job["reason"], flush=True)
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9911
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening on", server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
