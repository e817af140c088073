"""A tiny service for photon's example: GET /health and GET / on $PORT (stdlib only).

Run locally: `PORT=8080 python3 app.py`. photon starts it as `python3 app.py --port ${PORT}`
(local target) or runs the image built from the Dockerfile (Docker / AWS).
"""

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/health":
            body, status = b"ok\n", 200
        else:
            doc = {"service": os.environ.get("OTEL_SERVICE_NAME", "hello"),
                   "greeting": os.environ.get("GREETING", "hello"),
                   # Never echo a secret: say only whether it arrived.
                   "api_key_set": bool(os.environ.get("API_KEY"))}
            body, status = (json.dumps(doc) + "\n").encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # one line per request on stdout: photon keeps it as JSON lines
        print(f"{self.address_string()} {fmt % args}", flush=True)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A router's health check may reset its connection after reading the status line.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    port = ap.parse_args().port
    print(f"hello listening on 127.0.0.1:{port}", flush=True)
    Server(("127.0.0.1", port), Handler).serve_forever()
