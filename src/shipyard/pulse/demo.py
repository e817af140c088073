"""`shipyard pulse demo`: the monitor, end to end, on an embedded default (no cloud, no files).

Starts a small HTTP service on 127.0.0.1 with a healthy, a slow and a broken endpoint, writes
four monitors for it into a temporary folder (http with a JSON condition, a slow threshold,
one that fails, a push monitor nobody pings), runs `pulse run` on them for a few seconds with
the history in a temporary SQLite file, and prints what it saw and the notices it would send.
With --port the status page is served meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shipyard.console import console, print_table
from shipyard.notify import MemoryNotifier
from shipyard.pulse.history import open_history
from shipyard.pulse.service import PulseService
from shipyard.pulse.web import serve
from shipyard.settings import get_settings

MONITORS = """\
- type: http
  id: checkout
  name: Checkout API
  urls: ['{base}/health']
  schedule: '@every 1s'
  check.response.json:
    - {{description: database reachable, condition: {{equals: {{db: ok}}}}}}
- type: http
  id: search
  name: Search
  urls: ['{base}/slow']
  schedule: '@every 1s'
  slow_threshold: {{threshold: 200ms, checks: 2}}
- type: http
  id: billing
  name: Billing
  urls: ['{base}/broken']
  schedule: '@every 1s'
  alert: {{failure_threshold: 2}}
- type: push
  id: nightly-report
  name: Nightly report (push)
  token: demo-token-0123456789
  every: 1s
  grace: 1s
"""


class _Service(BaseHTTPRequestHandler):
    def log_message(self, *a):  # quiet
        pass

    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.3)
        code = 500 if self.path == "/broken" else 200
        body = json.dumps({"db": "ok" if code == 200 else "down"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def run_demo(seconds: float, port: int | None) -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    notifier = MemoryNotifier()
    with tempfile.TemporaryDirectory(prefix="pulse-demo-") as tmp:
        conf = Path(tmp) / "monitors"
        conf.mkdir()
        (conf / "demo.yml").write_text(MONITORS.format(base=f"http://127.0.0.1:{server.server_address[1]}"))
        history = open_history(str(Path(tmp) / "pulse.sqlite3"))
        svc = PulseService(conf, settings=get_settings(), history=history, notifier=notifier)

        async def main() -> None:
            async def stop_later() -> None:
                await asyncio.sleep(seconds)
                svc.stop()

            def ready(s: PulseService) -> None:
                where = f"; status page http://127.0.0.1:{s.port}/" if s.port else ""
                console.print(f"pulse demo: {len(s.monitors)} monitors for {seconds:g} s{where}")
                asyncio.get_running_loop().create_task(stop_later())

            await svc.run(port=port, ready=ready, serve=serve)

        try:
            with console.status("checking..."):
                asyncio.run(main())
            snap = svc.status.snapshot()
            print_table("what pulse saw", ["monitor", "status", "checks", "failed", "last error"],
                        [(m["name"], m["status"], m["checks"], m["failures"], m["error"] or "") for m in snap])
            print_table("notices it sent (Slack or ./outbox.jsonl when run for real)", ["level", "title", "message"],
                        [(n.level, n.title, n.message) for n in notifier.notices])
        finally:
            history.close()
            server.shutdown()
            server.server_close()
    return 0
