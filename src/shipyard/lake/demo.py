"""`shipyard lake demo`: a Firehose-shaped raw zone made on the spot, ingested, queried, erased.

Needs no cloud account: the raw zone and the lake are local folders under `--dir`. The raw zone
looks like Firehose's output: `YYYY/MM/DD/HH/` prefixes, keys with no extension, one gzipped,
records concatenated with no delimiter, and a few events re-sent.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shipyard.store import open_store

USERS = ["781f9c58-d664-4fa9-a8a8-529f035efa25", "795b929e-9a9a-40fd-aa7b-5bf55eb561a4",
         "9b08923d-10c6-4fd9-94b2-b8fda02f34a6"]


def _events(n: int, seed: int = 5) -> list[dict]:
    rnd = random.Random(seed)
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        t = t0 + timedelta(seconds=rnd.randrange(3 * 86400))
        out.append({"event_id": f"evt-{i:04d}", "ts": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "user_id": rnd.choice(USERS), "event": rnd.choice(["app_open", "card_swipe", "payment"]),
                    "amount": round(rnd.uniform(10, 5000), 2),
                    "device": {"os": rnd.choice(["ios", "android"]), "network": rnd.choice(["wifi", "5g"])}})
    return out


def lay_out(folder: Path) -> str:
    """Write shipyard.toml and the raw zone into `folder`; returns the dataset name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shipyard.toml").write_text(
        '[lake.datasets.events]\nraw = "raw/events"\nlake = "lake/events"\nid = ["event_id"]\n'
        'time = "ts"\npartition_by = ["dt"]\nsort_by = ["user_id", "ts"]\ncompression = "zstd"\n')
    raw = folder / "raw" / "events"
    raw.mkdir(parents=True, exist_ok=True)
    store = open_store(str(raw))
    ev = _events(60)
    concat = "".join(json.dumps(e) for e in ev[:25]).encode()  # Firehose adds no newline
    store.put("2026/11/01/07/app-events-1-2026-11-01-07-00-00-0a1b2c3d", concat)
    lines = "".join(json.dumps(e) + "\n" for e in ev[25:] + ev[20:25]).encode()  # 5 re-sent
    store.put("2026/11/01/08/app-events-1-2026-11-01-08-00-00-4e5f6a7b.gz", gzip.compress(lines))
    return "events"
