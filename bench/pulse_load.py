"""Load benchmark for `shipyard pulse run`: 1,000 HTTP monitors at `@every 1s`, loopback only.

    .venv/bin/python bench/pulse_load.py [--monitors 1000] [--seconds 30]

1. Starts a minimal keep-alive HTTP server (asyncio protocol, fixed response) in its own process
   on 127.0.0.1.
2. Fastest known path, same run: raw httpx.AsyncClient GETs against that server with the same
   connection limit the monitor uses (200), as fast as possible -> requests/s and CPU per request.
3. The monitor: `shipyard pulse run` as a separate process with N monitor files' worth of
   monitors, for --seconds; its CPU and memory are sampled with psutil every second.
   Afterwards the SQLite history it wrote gives checks/s sustained and the scheduling lag
   (check start - scheduled time) percentiles over the steady part of the run (after warm-up).

Prints the figures and two ratios against the raw-httpx path: throughput used (checks/s
sustained / raw requests/s capacity) and overhead (monitor CPU per check / raw CPU per request).
Not a test: nothing here asserts, it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
import psutil

BODY = b'{"status":"ok"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


def _server(port: int, ready) -> None:  # runs in a child process
    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.t = transport
            self.buf = b""
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data):
            self.buf += data
            while b"\r\n\r\n" in self.buf:  # GETs only: no request bodies
                _, self.buf = self.buf.split(b"\r\n\r\n", 1)
                self.t.write(RESPONSE)

    async def main():
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Proto, "127.0.0.1", port, backlog=4096)
        ready.set()
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _raw_httpx(url: str, seconds: float, concurrency: int, per_client: int) -> int:
    # The same shape the monitor uses (small pools, see shipyard.pulse.checks.ClientPool),
    # without scheduling, recording or alerting: plain GETs back to back.
    n_clients = -(-concurrency // per_client)
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [httpx.AsyncClient(limits=limits, trust_env=False) for _ in range(n_clients)]
    n = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal n
        while time.monotonic() < deadline:
            r = await client.get(url)
            r.raise_for_status()
            n += 1

    await asyncio.gather(*(worker(clients[i % n_clients]) for i in range(concurrency)))
    for c in clients:
        await c.aclose()
    return n


def raw_httpx(url: str, seconds: float, concurrency: int = 16, per_client: int = 4) -> dict:
    # The monitor's httpx path needs nothing special any more (sniffio is a dependency).
    proc = psutil.Process()
    c0 = proc.cpu_times()
    t0 = time.perf_counter()
    n = asyncio.run(_raw_httpx(url, seconds, concurrency, per_client))
    wall = time.perf_counter() - t0
    c1 = proc.cpu_times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"requests": n, "wall_s": wall, "rps": n / wall, "cpu_s": cpu, "cpu_per_request_ms": cpu / n * 1000,
            "concurrency": concurrency, "per_client": per_client}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run_monitor(url: str, monitors: int, seconds: float, warmup: float, workdir: Path) -> dict:
    conf = workdir / "monitors"
    conf.mkdir()
    per_file = 100
    for f in range(0, monitors, per_file):
        lines = [f"- {{type: http, id: m{i:05d}, urls: ['{url}/m/{i}'], schedule: '@every 1s', timeout: 5s}}"
                 for i in range(f, min(f + per_file, monitors))]
        (conf / f"team-{f // per_file:03d}.yml").write_text("\n".join(lines) + "\n")
    db = workdir / "pulse.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_OUTBOX"] = str(workdir / "outbox.jsonl")
    cmd = [sys.executable, "-m", "shipyard.cli", "pulse", "run", "--config-dir", str(conf),
           "--database-url", str(db)]
    t_start = time.time()
    # Its log goes to a file: a pipe nobody reads would fill up and stall the monitor.
    log_file = open(workdir / "pulse.log", "w")
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    ps = psutil.Process(proc.pid)
    samples = []
    ps.cpu_percent(None)
    c0 = ps.cpu_times()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1.0)
        try:
            samples.append((time.time(), ps.cpu_percent(None), ps.memory_info().rss))
            c_last = ps.cpu_times()
        except psutil.NoSuchProcess:
            break
    t_end = time.time()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log_file.close()
    if proc.returncode != 0:
        raise SystemExit(f"monitor exited with {proc.returncode}:\n{(workdir / 'pulse.log').read_text()[-3000:]}")

    lo, hi = t_start + warmup, t_end - 1.0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT lag_ms, rtt_ms, ok FROM pulse_checks WHERE ts >= ? AND ts < ?", (lo, hi)).fetchall()
    total = con.execute("SELECT COUNT(*) FROM pulse_checks").fetchone()[0]
    con.close()
    lags = [r[0] for r in rows]
    rtts = [r[1] for r in rows if r[1] is not None]
    steady = [s for s in samples if s[0] >= lo]
    cpu_s = (c_last.user - c0.user) + (c_last.system - c0.system)
    return {
        "monitors": monitors, "seconds": seconds, "warmup_s": warmup,
        "checks_total": total, "checks_steady": len(rows),
        "checks_per_s": len(rows) / (hi - lo), "failed": sum(1 for r in rows if not r[2]),
        "lag_p50_ms": pct(lags, 0.5), "lag_p99_ms": pct(lags, 0.99), "lag_max_ms": max(lags, default=float("nan")),
        "rtt_p50_ms": pct(rtts, 0.5), "rtt_p99_ms": pct(rtts, 0.99),
        "cpu_percent_avg": sum(s[1] for s in steady) / max(1, len(steady)),
        "rss_mib_max": max((s[2] for s in samples), default=0) / 2**20,
        "cpu_s": cpu_s, "cpu_per_check_ms": cpu_s / max(1, total) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--monitors", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--raw-seconds", type=float, default=10.0)
    args = ap.parse_args()

    port = free_port()
    ready = mp.Event()
    server = mp.Process(target=_server, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"pulse load benchmark · {date.today()} · {os.cpu_count()} cores · "
              f"{psutil.virtual_memory().total / 2**30:.0f} GiB · {platform.system()} · Python {platform.python_version()}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        # The machine may be shared: measure the fastest path before AND after the monitor
        # run and compare against the mean, so both sides see the same conditions.
        before = raw_httpx(url + "/raw", args.raw_seconds / 2)
        with tempfile.TemporaryDirectory(prefix="pulse-bench-") as d:
            mon = run_monitor(url, args.monitors, args.seconds, args.warmup, Path(d))
        after = raw_httpx(url + "/raw", args.raw_seconds / 2)
        raw = {"rps": (before["rps"] + after["rps"]) / 2,
               "cpu_per_request_ms": (before["cpu_per_request_ms"] + after["cpu_per_request_ms"]) / 2,
               "before": before, "after": after}
        print(f"raw httpx (fastest known path, 16 in flight): {raw['rps']:.0f} requests/s "
              f"(before {before['rps']:.0f}, after {after['rps']:.0f}), "
              f"{raw['cpu_per_request_ms']:.3f} ms CPU/request")
        print(f"pulse run: {mon['monitors']} monitors @every 1s for {mon['seconds']:.0f} s "
              f"(steady window after {mon['warmup_s']:.0f} s warm-up)")
        print(f"  checks/s sustained     {mon['checks_per_s']:.0f}  (target {mon['monitors']})  failed {mon['failed']}")
        print(f"  scheduling lag         p50 {mon['lag_p50_ms']:.1f} ms · p99 {mon['lag_p99_ms']:.1f} ms · "
              f"max {mon['lag_max_ms']:.1f} ms")
        print(f"  response time          p50 {mon['rtt_p50_ms']:.1f} ms · p99 {mon['rtt_p99_ms']:.1f} ms")
        print(f"  monitor CPU            {mon['cpu_percent_avg']:.0f} % of one core · "
              f"{mon['cpu_per_check_ms']:.3f} ms CPU/check")
        print(f"  monitor memory (RSS)   {mon['rss_mib_max']:.0f} MiB max")
        print(f"ratio throughput: checks/s sustained / raw httpx requests/s = {mon['checks_per_s'] / raw['rps']:.2f}")
        print(f"ratio overhead:   CPU per check / CPU per raw request     = "
              f"{mon['cpu_per_check_ms'] / raw['cpu_per_request_ms']:.2f}x")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        print(json.dumps({"raw": raw, "monitor": mon}, default=float))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
