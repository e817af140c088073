"""A tiny HTTP app for the demo, the tests and the bench: `python -m shipyard.photon.demo_app --port N`.

GET /health answers 200 (503 when HEALTH=fail); any other path answers `VERSION GREETING`.
WORK_US=200 burns that much CPU per request. FAIL_RATE=0.3 answers 500 to that share of requests (deterministically: every n-th), to play a
bad release that still passes its health check. HTTP/1.1 keep-alive on asyncio streams; SIGTERM
stops accepting and lets requests in flight finish.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time


async def serve(port: int) -> None:
    version = os.environ.get("VERSION", "v1")
    greeting = os.environ.get("GREETING", "hello")
    fail_rate = float(os.environ.get("FAIL_RATE", "0") or 0)
    health_ok = os.environ.get("HEALTH", "ok") != "fail"
    # WORK_US: CPU to spend per request (the bench's "real handler"); 0 answers at once.
    work = float(os.environ.get("WORK_US", "0") or 0) / 1e6
    body_ok = f"{version} {greeting}\n".encode()
    counter = {"n": 0, "bad": 0}

    def answer(path: str) -> tuple[int, bytes]:
        if path == "/health":
            return (200, b"ok\n") if health_ok else (503, b"unhealthy\n")
        counter["n"] += 1
        if work:
            end = time.perf_counter() + work
            while time.perf_counter() < end:
                pass
        if fail_rate and counter["bad"] < counter["n"] * fail_rate:
            counter["bad"] += 1
            return 500, b"boom\n"
        return 200, body_ok

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                length, close = 0, False
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    k = k.strip().lower()
                    if k == "content-length":
                        length = int(v.strip() or 0)
                    elif k == "connection" and v.strip().lower() == "close":
                        close = True
                if length:
                    await reader.readexactly(length)
                status, body = answer(parts[1] if len(parts) > 1 else "/")
                reason = {200: "OK", 500: "Internal Server Error", 503: "Service Unavailable"}[status]
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s"
                             % (status, reason.encode(), len(body), b"Connection: close\r\n" if close else b"", body))
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"demo app {version} listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()  # stop accepting; connections in flight finish their current request
    await asyncio.sleep(0.2)
    print(f"demo app {version} stopped after {counter['n']} requests", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    asyncio.run(serve(ap.parse_args().port))


if __name__ == "__main__":
    main()
