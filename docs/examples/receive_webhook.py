"""A webhook receiver (Python standard library only): checks `Usher-Signature` in constant time and its
time, drops an event id it has seen (delivery is at least once), answers 2xx fast and does the work after.

Run: WEBHOOK_SECRET=whsec_… python3 receive_webhook.py 8080   (the endpoint URL is http://host:8080/)
"""
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ["WEBHOOK_SECRET"]
seen = set()  # use your database in production: a unique index on the event id


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t, v1 = int(parts["t"]), parts["v1"]
    except (KeyError, ValueError):
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1) and abs(time.time() - t) <= tolerance_s


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verify(SECRET, self.headers.get("Usher-Signature", ""), body):
            self.send_response(400)
            self.end_headers()
            return
        event = json.loads(body)
        self.send_response(204)
        self.end_headers()
        if event["id"] in seen:
            return
        seen.add(event["id"])
        print("verified", event["type"], event["id"], json.dumps(event["data"], sort_keys=True), flush=True)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Hook)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
