"""The lake on EMR or Glue: `python -m shipyard.lake.spark_job --dataset events [--config URL]`.

Runs `ingest(dataset, engine="spark")` (then, optionally, `compact` and the Glue registration)
inside the cluster's SparkSession: `getOrCreate()` returns the session EMR (`spark-submit`) or
Glue (the job's GlueContext) already made, so executors read raw and lake objects by their
s3:// URIs. The dataset config is the same shipyard.toml as on a laptop; `--config` may be an
s3:// URL (it is copied to a local temp file; relative paths in it must then be s3:// URLs).
deploy/glue_lake_job.py is the Glue job script; docs/lake.md shows the job definitions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from shipyard.errors import ShipyardError
from shipyard.lake.glue import register
from shipyard.lake.ingest import ingest
from shipyard.lake.ops import compact
from shipyard.settings import get_settings
from shipyard.store import is_s3_url, local_copy, open_store


def _config(url: str | None, into: Path) -> None:
    if not url:
        return
    if is_s3_url(url):
        folder, name = url.rsplit("/", 1)
        dst = into / "shipyard.toml"
        with local_copy(open_store(folder), name) as src:
            dst.write_bytes(src.read_bytes())
        url = str(dst)
    os.environ["SHIPYARD_CONFIG"] = url


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shipyard.lake.spark_job", description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, help="[lake.datasets.NAME] to ingest")
    ap.add_argument("--config", help="shipyard.toml: a path or an s3:// URL")
    ap.add_argument("--compact", action="store_true", help="compact the touched partitions afterwards")
    ap.add_argument("--glue-database", help="register / update the Glue table afterwards")
    ap.add_argument("--notify", action="store_true", help="send a notice on success too")
    # Glue passes its own arguments (--JOB_NAME, --TempDir, ...): ignore what is not ours.
    args, _ = ap.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="shipyard-job-") as tmp:
        try:
            _config(args.config, Path(tmp))
            settings = get_settings(fresh=True)
            r = ingest(args.dataset, engine="spark", notify_success=args.notify, settings=settings,
                       progress=lambda s: print(s, flush=True))
            print(f"ingested {r.raw_files} raw file(s): {r.rows_read} rows read, {r.rows_written} written, "
                  f"lake version {r.version}", flush=True)
            if args.compact:
                c = compact(args.dataset, settings=settings)
                print(f"compacted {c.partitions} partition(s): {c.files_before} -> {c.files_after} files")
            if args.glue_database:
                g = register(args.dataset, glue_database=args.glue_database, settings=settings)
                print(f"Glue table {g['table']}: {g['partitions_added']} partition(s) added")
        except ShipyardError as exc:
            print(f"error: {exc.message}" + (f"\nfix: {exc.hint}" if exc.hint else ""), file=sys.stderr)
            return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
