"""Benchmark for `shipyard site deploy` against moto's S3 server on loopback (in its own
process, as S3 is another machine).

    .venv/bin/python bench/site_deploy.py [--files 5000] [--workers 16] [--repeat 2]

1. Fastest known path, same run: a direct parallel boto3 upload of the same files (a thread
   pool of --workers over one client, put_object with a Content-Type), into a fresh bucket.
2. `shipyard site deploy` of the same folder into another fresh bucket (the first deploy:
   list, hash, plan, upload in parallel, write the release manifest).
   Best of --repeat for both; the ratio is shipyard's files/s over boto3's (target >= 0.8).
3. Deploys with nothing changed (--repeat of them): PUTs on site files (target 0), and the
   best time (target < 2 s).
4. One file changed: PutObject calls on site files (target 1).

PUTs are counted as new object versions (the buckets are versioned, as docs/site.md
recommends), release manifests aside. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import platform
import random
import shutil
import socket
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KINDS = [("html", b"<!doctype html><title>%d</title><p>page %d</p>\n"), ("css", b"body{margin:%dpx}/*%d*/\n"),
         ("js", b"console.log(%d, %d);\n"), ("svg", b"<svg xmlns='http://www.w3.org/2000/svg'><!-- %d %d --></svg>\n")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_server(port: int) -> None:
    """moto's S3 server in its own process, as S3 is another machine (runs in the child)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"moto's server did not start on port {port}")


def make_site(root: Path, n: int) -> None:
    rnd = random.Random(7)
    for i in range(n):
        ext, tpl = KINDS[i % len(KINDS)]
        folder = root / f"section{i % 50}"
        folder.mkdir(parents=True, exist_ok=True)
        body = (tpl % (i, i)) * rnd.randint(8, 40)  # 0.2-2 KB, like a small static site
        (folder / f"file{i}.{ext}").write_bytes(body)


def boto3_upload(client, bucket: str, root: Path, workers: int) -> float:
    from shipyard.site.model import content_type

    files = [p for p in root.rglob("*") if p.is_file()]
    t0 = time.perf_counter()

    def put(p: Path) -> None:
        client.put_object(Bucket=bucket, Key=p.relative_to(root).as_posix(), Body=p.read_bytes(),
                          ContentType=content_type(p.name))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, files))
    return time.perf_counter() - t0


def site_versions(client, bucket: str) -> int:
    """Object versions of site files (not release manifests): one per PUT in a versioned bucket."""
    return sum(1 for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket)
               for v in page.get("Versions", []) if not v["Key"].startswith(".shipyard/"))


def drop_bucket(client, bucket: str) -> None:
    """Every version gone, then the bucket (moto frees the memory)."""
    keys = [{"Key": o["Key"], "VersionId": o["VersionId"]}
            for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket)
            for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
    for start in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys[start:start + 1000], "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    port = free_port()
    server = mp.get_context("spawn").Process(target=moto_server, args=(port,), daemon=True)
    server.start()
    wait_for_port(port)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})

    from shipyard import aws
    from shipyard.settings import SiteSettings
    from shipyard.site import deploy

    settings = SiteSettings(workers=args.workers)
    raw = aws.client("s3", max_pool_connections=args.workers + 2, cache=False)
    work = Path(tempfile.mkdtemp(prefix="bench-site-"))
    results: list[tuple[str, str, str, bool]] = []
    try:
        site = work / "public"
        make_site(site, args.files)
        print(f"{args.files:,} files, {sum(p.stat().st_size for p in site.rglob('*') if p.is_file()) / 1e6:.1f} MB; "
              f"{args.workers} workers; best of {args.repeat}; moto's S3 server on loopback; "
              f"{platform.node()} {os.cpu_count()} cores, Python {platform.python_version()} "
              f"(the machine is shared with other jobs: read the ratio, not the absolute rates)", flush=True)
        t_raw, t_site, bucket = float("inf"), float("inf"), ""
        for round_ in range(args.repeat):
            # Alternate who goes first, and empty each bucket after its run: moto keeps every
            # object in memory, and the one that runs later would pay for the other's objects.
            for which in (("raw", "site") if round_ % 2 == 0 else ("site", "raw")):
                b = f"bench-{which}-{uuid.uuid4().hex[:8]}"
                raw.create_bucket(Bucket=b)
                # versioned (as docs/site.md recommends): each PUT leaves a version to count
                raw.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
                if which == "raw":
                    t_raw = min(t_raw, boto3_upload(raw, b, site, args.workers))
                    drop_bucket(raw, b)
                    continue
                t0 = time.perf_counter()
                first = deploy(str(site), f"s3://{b}", check=False, settings=settings)
                t_site = min(t_site, time.perf_counter() - t0)
                assert len(first.uploaded) == args.files, first.to_dict()
                if bucket:
                    drop_bucket(raw, bucket)
                bucket = b
        ratio = t_raw / t_site
        print(f"boto3 parallel put_object: {args.files / t_raw:8,.0f} files/s ({t_raw:.2f} s)")
        print(f"shipyard site deploy:      {args.files / t_site:8,.0f} files/s ({t_site:.2f} s)")
        results.append(("first deploy ratio", f"{ratio:.2f}", ">= 0.80", ratio >= 0.8))

        before = site_versions(raw, bucket)
        t_again, cpu_again, uploaded = float("inf"), float("inf"), 0
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            again = deploy(str(site), f"s3://{bucket}", check=False, settings=settings)
            t_again = min(t_again, time.perf_counter() - t0)
            cpu_again = min(cpu_again, time.process_time() - c0)
            uploaded += len(again.uploaded)
        puts = site_versions(raw, bucket) - before
        results.append(("no-change redeploy PUTs", str(puts), "0", puts == 0 and not uploaded))
        results.append(("no-change redeploy seconds", f"{t_again:.2f}", "< 2", t_again < 2))
        # wall time swings with the machine's load; the deploy's own CPU time does not
        results.append(("  (its CPU seconds)", f"{cpu_again:.2f}", "", True))

        changed = next(site.rglob("file7.*"))
        changed.write_bytes(changed.read_bytes() + b"\n/* changed */\n")
        before = site_versions(raw, bucket)
        one = deploy(str(site), f"s3://{bucket}", check=False, settings=settings)
        puts = site_versions(raw, bucket) - before
        results.append(("one changed file PUTs", str(puts), "1", puts == 1 and len(one.uploaded) == 1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.terminate()
        server.join(10)
    print(f"\n{'measure':<28}{'value':>8}{'target':>10}  result")
    for name, value, target, ok in results:
        print(f"{name:<28}{value:>8}{target:>10}  {'ok' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
