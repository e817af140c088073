"""A client that keeps sending GETs to an endpoint and counts what came back.

Used by `shipyard photon demo` to show a rollout from the user's side, and by the tests that
prove a good rollout drops no request. Keep-alive connections, reopened after any failure.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter


class ClientLoop(threading.Thread):
    def __init__(self, endpoint: str, path: str = "/", clients: int = 1, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        host_port = endpoint.removeprefix("http://").rstrip("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        self.path, self.pause, self.clients = path, pause, clients
        self.statuses: Counter[int] = Counter()  # 0 = connection failed
        self.bodies: Counter[str] = Counter()
        self.failures: list[str] = []
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def _one_client(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("GET", self.path)
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace").strip()
                with self._lock:
                    self.statuses[resp.status] += 1
                    self.bodies[body.split(" ")[0]] += 1
                    if resp.status >= 500:
                        self.failures.append(f"{resp.status} {body[:80]}")
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.statuses[0] += 1
                    self.failures.append(type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def run(self) -> None:
        workers = [threading.Thread(target=self._one_client, daemon=True) for _ in range(self.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def stop(self) -> "ClientLoop":
        self._halt.set()
        self.join(timeout=15)
        return self

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.statuses.items() if s == 0 or s >= 500)
