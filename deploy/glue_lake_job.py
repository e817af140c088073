"""AWS Glue (Spark, Glue 4.0+) job script for the lake: ingest one dataset with the Spark engine.

Job parameters (see docs/lake.md, "EMR and Glue"):
  --additional-python-modules  shipyard[spark]   (or an S3 wheel of this repository)
  --dataset events  --config s3://my-bucket/config/shipyard.toml  [--glue-database analytics] [--compact]

Never run on AWS Glue from this repository's CI (no AWS account): the same entry point is run
locally by tests/lake/test_spark.py::test_spark_job_entry_point with a local Spark master.
"""

import sys

from pyspark.context import SparkContext

from shipyard.lake.spark_job import main

# Glue's SparkContext first, so the lake's getOrCreate() gets the job's session and cluster.
SparkContext.getOrCreate()
sys.exit(main(sys.argv[1:]))
