"""shipyard lake: raw JSON events -> a deduplicated, hive-partitioned, snappy Parquet lake.

Library API (the CLI in cli.py only parses, calls these and prints):
  shipyard.lake.ingest.ingest(name, engine="duckdb"|"spark")  -> IngestResult
  shipyard.lake.ops.query(sql, output=None)                   -> QueryResult
  shipyard.lake.ops.stats(name) / compact(name) / ddl(name, dialect="athena"|"trino")
Datasets come from `[lake.datasets.<name>]` (config.py); the lake's state is one manifest
(manifest.py) committed last. See docs/lake.md.
"""
