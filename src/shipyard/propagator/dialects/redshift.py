"""Redshift, a child of PostgreSQL: DISTKEY / SORTKEY, COPY FROM S3, merge by column list.

Plan-only here (no Redshift runs on this machine): golden SQL tests parse every statement
with sqlglot's redshift dialect, and the same plans run on PostgreSQL with only the
Redshift-only clauses swapped (see docs/propagator.md).
"""

from __future__ import annotations

from shipyard.propagator.dialects.postgres import PostgresDialect


class RedshiftDialect(PostgresDialect):
    name = "redshift"
    sqlglot = "redshift"
    # `<db>` is a schema of the cluster's database.
    database_is_schema = True
    dist_sort_keys = True
    sort_key_as_index = False
    bulk = "copy_s3"
    # Merge by a column list: UPDATE ... FROM staging, DELETE matched rows from staging,
    # INSERT the rest (https://docs.aws.amazon.com/redshift/latest/dg/merge-specify-a-column-list.html).
    upsert = "update_then_insert"
    # Redshift has no advisory locks; LOCK serialises writers until commit
    # (https://docs.aws.amazon.com/redshift/latest/dg/r_LOCK.html).
    lock = "lock_table"
    # https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html has no IF NOT EXISTS for ADD COLUMN.
    add_column_if_not_exists = False
