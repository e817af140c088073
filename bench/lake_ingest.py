"""Benchmark: `shipyard lake ingest` against DuckDB's own partitioned COPY, same files, same run.

Prints, each the median of --rounds whole processes (issue 20 / 19 targets in brackets):
  1. first ingest: `shipyard lake ingest` (type checks over every row, dedupe within the batch,
     hive partitions, publish, manifest commit) vs `COPY (SELECT *, dt FROM read_json(...)) TO
     ... (FORMAT parquet, PARTITION_BY (dt))` of the same gzipped files, UUIDs kept as text [>= 0.8x]
  2. incremental ingest of one file holding 10% new and 20% re-sent events (the anti-join
     against the touched partitions) vs the same COPY of that file                         [>= 0.6x]
  3. the ingest's phase breakdown (seconds per step, from `ingest --json`);
  4. peak RSS of the ingest process at 1x and 4x the events                             [flat]
  5. storage: the lake with zstd + sort_by vs DuckDB's own partitioned snappy output     [>= 1.5x]
  6. a one-user, one-day lookup on the lake vs the same query scanning the raw JSON.

Events look like an app's: a random UUID per event, n/40 users (UUIDs) each with one phone, a
home city and sessions of ~20 events, ISO timestamps over a week, nested device / geo /
properties objects whose size varies (records of ~300 B - 1 KB), 5% re-sent duplicates.
Not a timed test: run it with `make bench` or `python bench/lake_ingest.py`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

OS_MODELS = {"android": ["Pixel 7", "Galaxy S22", "Redmi Note 12", "OnePlus 11", "Moto G84"],
             "ios": ["iPhone 13", "iPhone 14", "iPhone 15 Pro", "iPhone SE"]}
EVENTS = ["app_open", "screen_view", "button_tap", "card_swipe", "payment_success",
          "payment_failed", "login", "logout", "offer_view", "kyc_step"]
SCREENS = ["home", "card", "pay", "offers", "profile", "kyc", "statement", "rewards"]
ERRORS = [("E101", "card declined by issuer"), ("E205", "insufficient credit limit available"),
          ("E301", "upi handle not reachable, please retry after some time"),
          ("E404", "merchant not found"), ("E500", "payment gateway timeout while authorising")]
CAMPAIGNS = ["diwali_cashback_2026", "refer_a_friend", "card_upgrade_q4", "emi_on_upi", "weekend_rewards"]
UA = ["Mozilla/5.0 (Linux; Android {v}; {m}) AppleWebKit/537.36 (KHTML, like Gecko) SliceApp/{a} Mobile",
      "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) SliceApp/{a}"]
CITIES = [("IN", "Bengaluru", 12.97, 77.59), ("IN", "Mumbai", 19.07, 72.87), ("IN", "Delhi", 28.61, 77.2),
          ("IN", "Pune", 18.52, 73.85), ("IN", "Chennai", 13.08, 80.27), ("IN", "Hyderabad", 17.38, 78.48)]


def make_user(rnd: random.Random) -> dict:
    """A user's stable traits: one phone, one home city, an app version, a few sessions a day."""
    os_ = rnd.choice(["android", "android", "ios"])
    country, city, lat, lon = rnd.choice(CITIES)
    return {
        "user_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "os": os_, "model": rnd.choice(OS_MODELS[os_]),
        "os_version": rnd.choice(["12", "13", "14"] if os_ == "android" else ["16.4", "17.1"]),
        "locale": rnd.choice(["en_IN", "hi_IN"]), "screen": rnd.choice([(1080, 2340), (1170, 2532), (1440, 3200)]),
        "geo": (country, city, round(lat + rnd.uniform(-0.1, 0.1), 3), round(lon + rnd.uniform(-0.1, 0.1), 3)),
        "app": rnd.choice(["5.12.0", "5.12.1", "5.13.0", "5.14.2"]),
        "session": f"s-{rnd.getrandbits(40):010x}",
    }


def make_event(rnd: random.Random, users: list[dict], t0: datetime, days: int) -> dict:
    u = rnd.choice(users)
    if rnd.random() < 0.05:  # a new session now and then (~20 events per session)
        u["session"] = f"s-{rnd.getrandbits(40):010x}"
    os_ = u["os"]
    country, city, lat, lon = u["geo"]
    name = rnd.choice(EVENTS)
    props: dict = {"screen": rnd.choice(SCREENS), "duration_ms": rnd.randrange(20, 30_000)}
    if name.startswith("payment"):
        props.update(amount=round(rnd.uniform(10, 25_000), 2), currency="INR",
                     merchant=f"merchant-{rnd.randrange(5000)}", method=rnd.choice(["upi", "card", "emi"]))
    if name == "offer_view":
        props["offers"] = [f"offer-{rnd.randrange(300)}" for _ in range(rnd.randrange(1, 8))]
    if rnd.random() < 0.3:
        props["experiment"] = {"id": f"exp-{rnd.randrange(40)}", "variant": rnd.choice("ABC")}
    if name == "payment_failed":
        props["error"] = {"code": rnd.choice(ERRORS)[0], "message": rnd.choice(ERRORS)[1],
                          "retryable": rnd.random() < 0.5}
    if rnd.random() < 0.25:  # deep links and campaign parameters: long, repetitive text
        props["referrer"] = (f"https://app.example.in/{rnd.choice(SCREENS)}?utm_source="
                             f"{rnd.choice(['push', 'sms', 'email', 'organic'])}&utm_campaign="
                             f"{rnd.choice(CAMPAIGNS)}&utm_medium={rnd.choice(['app', 'web'])}")
    t = t0 + timedelta(seconds=rnd.random() * days * 86400)
    return {
        "event_id": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "event": name,
        "ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z",
        "user_id": u["user_id"],
        "session_id": u["session"],
        "app_version": u["app"],
        "user_agent": UA[os_ == "ios"].format(v=u["os_version"].replace(".", "_"), m=u["model"], a=u["app"]),
        "device": {"os": os_, "os_version": u["os_version"], "model": u["model"], "locale": u["locale"],
                   "network": rnd.choice(["wifi", "4g", "5g"]),
                   "screen": {"w": u["screen"][0], "h": u["screen"][1]}},
        "geo": {"country": country, "city": city, "lat": round(lat + rnd.uniform(-0.01, 0.01), 5),
                "lon": round(lon + rnd.uniform(-0.01, 0.01), 5)},
        "properties": props,
    }


def generate(raw: Path, n: int, files: int, seed: int = 7, days: int = 7, start: int = 0,
             resend: list[str] | None = None) -> tuple[int, list[str]]:
    """Write n unique events (+ 5% re-sent duplicates, + `resend` lines) over gzipped JSON-lines
    files; returns (lines written, a sample of lines for later re-sends)."""
    rnd = random.Random(seed)
    users = [make_user(rnd) for _ in range(max(100, n // 40))]
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    raw.mkdir(parents=True, exist_ok=True)
    handles = [gzip.open(raw / f"events-{start + i:03d}.jsonl.gz", "wt", compresslevel=6) for i in range(files)]
    recent: list[str] = []
    sample: list[str] = []
    total = 0
    for i in range(n):
        line = json.dumps(make_event(rnd, users, t0, days), separators=(",", ":"))
        handles[i % files].write(line + "\n")
        total += 1
        recent.append(line)
        if len(recent) > 2000:
            recent.pop(0)
        if rnd.random() < 0.05:  # a re-send, landing in another file (as retries do)
            handles[rnd.randrange(files)].write(rnd.choice(recent) + "\n")
            total += 1
        if rnd.random() < 0.3:
            sample.append(line)
    for line in resend or []:
        handles[rnd.randrange(files)].write(line + "\n")
        total += 1
    for h in handles:
        h.close()
    return total, sample


def du(path: Path, suffix: str = ".parquet") -> int:
    return sum(p.stat().st_size for p in path.rglob(f"*{suffix}"))


COPY_SCRIPT = """
import sys, duckdb
files, out = sys.argv[1:-1], sys.argv[-1]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
lst = "[" + ", ".join(repr(f) for f in files) + "]"
con.execute(f"COPY (SELECT * REPLACE (CAST(event_id AS VARCHAR) AS event_id, CAST(user_id AS VARCHAR) AS user_id), "
            f"strftime(CAST(ts AS TIMESTAMPTZ), '%Y-%m-%d') AS dt FROM read_json({lst})) TO '{out}' "
            f"(FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)")
"""


CPU: dict[str, list[float]] = {}  # label -> CPU seconds (user + system) of each timed process


def run(cmd: list[str], env: dict, label: str | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS in bytes, stdout) of one whole process; its CPU seconds under `label`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    seconds = time.perf_counter() - t
    if p.returncode:
        sys.exit(f"{' '.join(cmd[:6])} failed: {err[-2000:]}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        CPU.setdefault(label, []).append(ru.ru_utime + ru.ru_stime - before.ru_utime - before.ru_stime)
    return seconds, ru.ru_maxrss * 1024, out  # max RSS over children so far


def peak_rss(cmd: list[str], env: dict) -> int:
    """Peak RSS of one process (wait4's rusage is per child, unlike RUSAGE_CHILDREN)."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"{' '.join(cmd[:6])} failed ({status})")
    return ru.ru_maxrss * 1024


def toml(work: Path, name: str, raw: str, extra: str = "") -> str:
    return (f'[lake.datasets.{name}]\nraw = "{raw}"\nlake = "lake/{name}"\nid = ["event_id"]\n'
            f'time = "ts"\npartition_by = ["dt"]\n{extra}\n')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (median of)")
    ap.add_argument("--no-memory", action="store_true", help="skip the 1x / 4x peak-RSS runs")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lake-bench-"))
    raw, inc = work / "raw" / "events", work / "raw" / "incremental"
    t = time.perf_counter()
    total, sample = generate(raw, args.events, args.files)
    rnd = random.Random(3)
    # The incremental file: 10% new events, 20% re-sent ones (already in the lake).
    inc_total, _ = generate(inc, args.events // 10, 1, seed=11, start=100,
                            resend=rnd.sample(sample, min(len(sample), args.events // 5)))
    raw_bytes = du(raw, ".gz")
    print(f"generated {total} lines ({total - args.events} re-sent), {raw_bytes / 1e6:.1f} MB gzipped "
          f"in {args.files} files; incremental file {inc_total} lines ({time.perf_counter() - t:.1f}s)")
    (work / "shipyard.toml").write_text(
        toml(work, "events", "raw/events")
        + toml(work, "small", "raw/events", 'compression = "zstd"\nsort_by = ["user_id", "ts"]'))
    env = dict(os.environ, SHIPYARD_CONFIG=str(work / "shipyard.toml"))
    ingest = [sys.executable, "-m", "shipyard.cli", "lake", "ingest", "--json"]
    copy = [sys.executable, "-c", COPY_SCRIPT]
    raw_files = sorted(str(p) for p in raw.glob("*.gz"))
    inc_files = sorted(str(p) for p in inc.glob("*.gz"))

    def lake_first(name: str, label: str | None = None) -> tuple[float, dict]:
        shutil.rmtree(work / "lake" / name, ignore_errors=True)
        sec, _, out = run(ingest + [name], env, label)
        return sec, json.loads(out)

    firsts, incs, copies, inc_copies, phases_first, phases_inc, inproc = [], [], [], [], [], [], []
    for r in range(args.rounds):
        copies.append(run(copy + raw_files + [str(work / "copy")], env, "COPY")[0])
        sec, res = lake_first("events", "first ingest")
        firsts.append(sec)
        phases_first.append(res["phases"])
        inproc.append(res["seconds"])
        inc_copies.append(run(copy + inc_files + [str(work / "copy_inc")], env, "incremental COPY")[0])
        # the incremental file joins the raw zone, is ingested, then leaves it again
        shutil.copy(inc_files[0], raw / "zz-incremental.jsonl.gz")
        incs.append(run(ingest + ["events"], env, "incremental ingest")[0])
        state = json.loads(subprocess.run(ingest[:-1] + ["events", "--dry-run", "--json"], env=env,
                                          capture_output=True, text=True).stdout or "{}")
        assert not state.get("batches"), state
        (raw / "zz-incremental.jsonl.gz").unlink()
        print(f"round {r + 1}: COPY {copies[-1]:.2f}s / ingest {firsts[-1]:.2f}s; incremental COPY "
              f"{inc_copies[-1]:.2f}s / ingest {incs[-1]:.2f}s")
    # the phases of one incremental ingest (on the last round's lake, redone)
    lake_first("events")
    shutil.copy(inc_files[0], raw / "zz-incremental.jsonl.gz")
    _, _, out = run(ingest + ["events"], env)
    phases_inc.append(json.loads(out)["phases"])
    inc_res = json.loads(out)
    (raw / "zz-incremental.jsonl.gz").unlink()

    # Correctness of what was measured: no duplicates, nothing lost.
    con = duckdb.connect()
    lake = work / "lake" / "events"
    files = f"read_parquet('{lake}/*/*.parquet', hive_partitioning=true, hive_types={{'dt': 'VARCHAR'}})"
    rows, ids = con.execute(f"SELECT count(*), count(DISTINCT event_id) FROM {files}").fetchone()
    assert rows == ids == args.events + args.events // 10, (rows, ids)
    assert inc_res["rows_written"] == args.events // 10, inc_res

    _, small = lake_first("small")
    copy_bytes = du(work / "copy")
    lake_bytes, small_bytes = du(lake), du(work / "lake" / "small")

    mem = None
    if not args.no_memory:
        big = work / "raw" / "big"
        generate(big, args.events * 4, args.files * 4, seed=21)
        (work / "shipyard.toml").write_text((work / "shipyard.toml").read_text() + toml(work, "big", "raw/big"))
        shutil.rmtree(work / "lake" / "events")
        mem = (peak_rss(ingest + ["events"], env), peak_rss(ingest + ["big"], env))

    med = statistics.median
    print()
    print(f"machine: {os.cpu_count()} cores (shared with other jobs: ratios are what count), "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
          f"DuckDB {duckdb.__version__}, {datetime.now():%Y-%m-%d %H:%M}")
    print(f"first ingest, {args.events} events: DuckDB partitioned COPY {med(copies):.2f}s, "
          f"lake ingest {med(firsts):.2f}s  -> {med(copies) / med(firsts):.2f}x   (target >= 0.8x)")
    print(f"incremental (10% new + 20% re-sent): COPY {med(inc_copies):.2f}s, lake ingest "
          f"{med(incs):.2f}s  -> {med(inc_copies) / med(incs):.2f}x   (target >= 0.6x)")
    print("CPU seconds (user + system, median; what a busy machine shares out): " + ", ".join(
        f"{k} {med(v):.2f}" for k, v in CPU.items()))
    for label, ph in (("first", phases_first[-1]), ("incremental", phases_inc[-1])):
        print(f"  phases ({label}): " + ", ".join(f"{k} {v:.2f}s" for k, v in ph.items()))
    if mem:
        print(f"peak RSS: {mem[0] / 1e6:.0f} MB at 1x, {mem[1] / 1e6:.0f} MB at 4x "
              f"-> {mem[1] / mem[0]:.2f}x   (target: flat)")
    print(f"storage: DuckDB partitioned snappy {copy_bytes / 1e6:.1f} MB; lake snappy "
          f"{lake_bytes / 1e6:.1f} MB; lake zstd + sort_by {small_bytes / 1e6:.1f} MB "
          f"-> {copy_bytes / small_bytes:.2f}x smaller   (target >= 1.5x)")
    print(f"  zstd + sort_by ingest {small['seconds']:.2f}s in-process vs snappy unsorted "
          f"{med(inproc):.2f}s -> {med(inproc) / small['seconds']:.2f}x speed   (target >= 0.8x)")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
