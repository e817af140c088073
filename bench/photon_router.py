"""Benchmark photon's local router (HAProxy) against the same app hit directly, same run.

    .venv/bin/python bench/photon_router.py [--seconds 8] [--clients 64] [--rounds 3] [--work-us 0]

1. `apply` deploys the embedded demo app (shipyard.photon.demo_app) to a new env and times
   apply -> the first 200 through the endpoint.
2. Load: --clients keep-alive connections (split over 2 client processes, asyncio, raw
   HTTP/1.1) for --seconds, against (a) the release's own port and (b) the endpoint; the rounds
   alternate so background load hits both alike. Requests/s and latency percentiles.
3. Added latency at rest: one connection, sequential GETs, p50 direct vs through the router.

Prints the figures and the ratios the issue sets: router RPS / direct RPS (target >= 0.8) and
added p50 (target <= 1 ms). The app is single-threaded Python, so it is the bottleneck of both
paths; the ratio is what the router costs in front of it. The bare demo app spends ~15 us of CPU
per request, less than HAProxy's own ~20 us, so `--work-us 0` is the router's worst case;
`--work-us 200` plays a handler that does some work. CPU per request of the app and of the
router (psutil) is printed too. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


async def _conn(host: str, port: int, until: float, lat: list[float]) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    while time.perf_counter() < until:
        t = time.perf_counter()
        writer.write(REQ)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        lat.append(time.perf_counter() - t)
        n += 1
    writer.close()
    return n


def _client(host: str, port: int, conns: int, seconds: float, q: mp.Queue) -> None:
    async def main() -> tuple[int, list[float]]:
        lat: list[float] = []
        until = time.perf_counter() + seconds
        counts = await asyncio.gather(*[_conn(host, port, until, lat) for _ in range(conns)])
        return sum(counts), lat[::10]  # a sample of latencies is enough for percentiles

    q.put(asyncio.run(main()))


def _cpu(pids: list[int]) -> float:
    import psutil  # a dev dependency; only the bench needs it

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def load(address: str, clients: int, seconds: float, watch: dict[str, list[int]]) -> dict[str, float]:
    host, _, port = address.rpartition(":")
    before = {k: _cpu(v) for k, v in watch.items()}
    q: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(host, int(port), clients // 2, seconds, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(x for _, sample in results for x in sample)
    n = sum(c for c, _ in results)
    out = {"rps": n / seconds, "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99)]}
    out.update({f"{k}_us": 1e6 * (_cpu(v) - before[k]) / max(n, 1) for k, v in watch.items()})
    return out


def sequential_p50(address: str, n: int = 2000) -> float:
    host, _, port = address.rpartition(":")
    lat: list[float] = []
    asyncio.run(_conn(host, int(port), time.perf_counter() + 2.0, lat))
    return 1000 * statistics.median(lat[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work-us", type=float, default=0,
                    help="CPU the app spends per request (0: the bare demo app, the router's worst case)")
    args = ap.parse_args()

    from shipyard.photon.model import validate
    from shipyard.photon.runner import Photon
    from shipyard.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix="photon-bench-"))
    os.chdir(work)
    os.environ["SHIPYARD_OUTBOX"] = str(work / "outbox.jsonl")
    get_settings(fresh=True)
    photon = Photon()
    dep = validate({"service": "bench", "env": "bench", "version": "v1",
                    "config": {"vars": {"WORK_US": str(args.work_us)}},
                    "local": {"command": [sys.executable, "-m", "shipyard.photon.demo_app", "--port", "${PORT}"]},
                    "deploy": {"strategy": {"type": "blue_green"}}})
    t0 = time.perf_counter()
    out = photon.apply(dep)
    host_port = (out.endpoint or "").removeprefix("http://")
    import http.client

    while True:
        c = http.client.HTTPConnection(*host_port.split(":"), timeout=2)
        try:
            c.request("GET", "/")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.01)
        finally:
            c.close()
    first_200 = time.perf_counter() - t0
    st = photon.status("bench", "bench")
    direct = json.loads((work / ".shipyard/photon/bench/bench/state.json").read_text())["releases"][st["live"]["release"]]["address"]
    from shipyard.photon.targets.local import procs

    owner = procs.owner_tag(photon.root, "bench", "bench")
    tagged = procs.tagged(owner)
    watch = {"app": [p for p, r in tagged.items() if r.startswith("release:")],
             "router": [p for p, r in tagged.items() if r == "router"]}
    try:
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "router": []}
        for _ in range(args.rounds):
            runs["direct"].append(load(direct, args.clients, args.seconds, watch))
            runs["router"].append(load(host_port, args.clients, args.seconds, watch))
        seq = {"direct": sequential_p50(direct), "router": sequential_p50(host_port)}
    finally:
        photon.terminate("bench", "bench")

    def best(name: str, key: str) -> float:
        vals = [r[key] for r in runs[name]]
        return max(vals) if key == "rps" else min(vals)

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared with other work)")
    print(f"apply -> first 200 on a new env: {first_200:.2f} s")
    print(f"{'path':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}   ({args.clients} keep-alive clients, {args.seconds:g}s, "
          f"best of {args.rounds}; app work {args.work_us:g} us/request)")
    for name in ("direct", "router"):
        print(f"{name:8} {best(name, 'rps'):9.0f} {best(name, 'p50_ms'):8.2f} {best(name, 'p99_ms'):8.2f}")
    cpu = {k: statistics.median(r[f"{k}_us"] for r in runs["router"]) for k in ("app", "router")}
    print(f"CPU per request through the router: app {cpu['app']:.0f} us, router (haproxy) {cpu['router']:.0f} us")
    ratio = best("router", "rps") / best("direct", "rps")
    # Background load moves between rounds; each round's pair ran back to back.
    paired = statistics.median(r["rps"] / d["rps"] for r, d in zip(runs["router"], runs["direct"]))
    print(f"router/direct throughput: {ratio:.2f}x best-to-best, {paired:.2f}x median of paired rounds "
          f"(target >= 0.8)")
    print(f"added p50 under load: {best('router', 'p50_ms') - best('direct', 'p50_ms'):+.2f} ms")
    print(f"added p50 at rest (1 connection): {seq['router'] - seq['direct']:+.3f} ms "
          f"(direct {seq['direct']:.3f} ms, router {seq['router']:.3f} ms; target <= 1 ms)")


if __name__ == "__main__":
    main()
