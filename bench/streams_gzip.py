"""shipyard.streams.bounded_reader against the fastest known streaming paths, same run.

Decompresses one gzip file (~120 MB of CSV, made on the spot) reading 64 KiB at a time through
  * zlib.decompressobj in a bare loop (the floor: no file object at all),
  * gzip.GzipFile (the stdlib reader; no limits),
  * bounded_reader (size + ratio caps),
and prints seconds and the ratio to the fastest of them in this run. Not a timed test: numbers depend on the machine.
"""

from __future__ import annotations

import gzip
import io
import time
import zlib

from shipyard.streams import bounded_reader

CHUNK = 1 << 16


def _bare(blob: bytes) -> int:
    d, total = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
    for i in range(0, len(blob), CHUNK):
        total += len(d.decompress(blob[i:i + CHUNK]))
    return total + len(d.flush())


def _read_all(f) -> int:
    total = 0
    with f:
        while chunk := f.read(CHUNK):
            total += len(chunk)
    return total


def main() -> None:
    data = b"".join(b"%d,user%d,%d,some text here\n" % (i, i % 977, i * 7) for i in range(3_000_000))
    blob = gzip.compress(data, 6)
    print(f"{len(data) / 1e6:.0f} MB of CSV, {len(blob) / 1e6:.0f} MB gzip; best of 5 interleaved rounds")
    paths = {
        "zlib.decompressobj loop": lambda: _bare(blob),
        "gzip.GzipFile": lambda: _read_all(gzip.GzipFile(fileobj=io.BytesIO(blob))),
        "bounded_reader": lambda: _read_all(bounded_reader(io.BytesIO(blob), name="bench.csv.gz")),
    }
    best = {name: float("inf") for name in paths}
    for _ in range(5):  # interleaved rounds: a loaded machine slows every path alike
        for name, run in paths.items():
            t0 = time.perf_counter()
            assert run() == len(data), name
            best[name] = min(best[name], time.perf_counter() - t0)
    fastest = min(best, key=best.__getitem__)
    for name, t in best.items():
        print(f"  {name:26s} {t:6.2f} s   x{t / best[fastest]:.2f} of the fastest ({fastest})   "
              f"{len(data) / t / 1e6:6.0f} MB/s")


if __name__ == "__main__":
    main()
