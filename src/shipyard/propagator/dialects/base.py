"""The Dialect base class: identifiers, types, and the strategy flags plan.py reads."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from shipyard.errors import InputError

# Outside parentheses a type may only use these extra words (DOUBLE PRECISION, CHARACTER
# VARYING, TIMESTAMP WITH TIME ZONE, INT UNSIGNED): anything else ("INTEGER DEFAULT 1",
# "INT NOT NULL") would be silently dropped by a parser, so it is refused instead.
_TYPE_TEXT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\s+[A-Za-z]+)*\s*(\(\s*[0-9A-Za-z]+\s*(,\s*[0-9]+\s*)?\))?"
                        r"(\s+[A-Za-z]+)*$")
_TYPE_WORDS = {"PRECISION", "VARYING", "WITH", "WITHOUT", "TIME", "ZONE", "UNSIGNED", "LOCAL"}


class Dialect:
    """One engine's SQL flavour. Subclasses override class attributes, rarely methods."""

    name: ClassVar[str] = "base"
    sqlglot: ClassVar[str] = ""  # sqlglot's dialect name, for parsing types and golden tests
    quote_char: ClassVar[str] = '"'
    # Placeholder for driver parameters (psycopg / pymysql use %s, DuckDB ?).
    param: ClassVar[str] = "%s"
    # `<db>` in the key: a schema in the connected database (DuckDB, Redshift) or a database.
    database_is_schema: ClassVar[bool] = False
    # DDL inside a transaction rolls back (Postgres, DuckDB, Redshift); MySQL commits it.
    transactional_ddl: ClassVar[bool] = True
    # Redshift: DISTKEY / SORTKEY clauses and the rule that a create must name both.
    dist_sort_keys: ClassVar[bool] = False
    # Engines without a sort key get an index on the sort_key columns instead.
    sort_key_as_index: ClassVar[bool] = True
    # DuckDB cannot drop a column while its table has an index: plans drop and recreate them.
    drop_column_blocked_by_index: ClassVar[bool] = False
    # How rows get in: COPY ... FROM STDIN, DuckDB's reader, LOAD DATA LOCAL, COPY FROM S3.
    bulk: ClassVar[Literal["copy_stdin", "duckdb_read", "load_data_local", "copy_s3"]] = "copy_stdin"
    # How an upsert is written.
    upsert: ClassVar[Literal["on_conflict", "on_duplicate_key", "update_then_insert"]] = "on_conflict"
    # ALTER TABLE ... ADD COLUMN IF NOT EXISTS (PostgreSQL, DuckDB, MariaDB; not Redshift).
    add_column_if_not_exists: ClassVar[bool] = True
    # One writer per table.
    lock: ClassVar[Literal["advisory_xact", "process", "get_lock", "lock_table"]] = "advisory_xact"
    # Bare type names an engine needs rewritten (MySQL has no VARCHAR without a length).
    type_overrides: ClassVar[dict[str, str]] = {}

    # -- identifiers -------------------------------------------------------------------------
    def q(self, ident: str) -> str:
        c = self.quote_char
        return c + ident.replace(c, c + c) + c

    def table_ref(self, database: str, table: str) -> str:
        if self.database_is_schema:
            return f"{self.q(database)}.{self.q(table)}"
        return self.q(table)

    def literal(self, value: object) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, (int, float)):
            return repr(value)
        return "'" + str(value).replace("'", "''") + "'"

    # -- types ---------------------------------------------------------------------------------
    def type_sql(self, type_text: str, column: str = "?") -> str:
        """Parse a user's type with sqlglot and render it for this engine.

        The text is parsed as a data type (`exp.DataType.build`), never pasted: "INT; DROP
        TABLE x" or "INT DEFAULT 1" are refused, unknown names ("FOOBAR") too.
        """
        bad = InputError(
            f"column {column!r}: {type_text!r} is not a {self.name} data type",
            hint="use a plain type such as INTEGER, BIGINT, VARCHAR(100), DECIMAL(12,2), BOOLEAN, DATE, "
            "TIMESTAMP",
            where={"field": f"column_specification.{column}"},
        )
        if not isinstance(type_text, str) or not _TYPE_TEXT.match(type_text.strip()):
            raise bad
        head = type_text.split("(")[0].split()
        if any(w.upper() not in _TYPE_WORDS for w in head[1:]):
            raise bad
        tail = type_text.split(")")[-1].split() if ")" in type_text else []
        if any(w.upper() not in _TYPE_WORDS for w in tail):
            raise bad
        override = self.type_overrides.get(type_text.strip().upper())
        if override:
            type_text = override
        try:
            dt = exp.DataType.build(type_text.strip(), dialect=self.sqlglot, udt=False)
        except (ParseError, ValueError, TypeError):
            raise bad from None
        if not isinstance(dt, exp.DataType) or dt.this in (None, exp.DataType.Type.USERDEFINED,
                                                            exp.DataType.Type.UNKNOWN):
            raise bad
        # Scalar columns only (CSV, JSON and Parquet fields load as scalars): no ARRAY / MAP / STRUCT.
        if dt.is_type(*exp.DataType.NESTED_TYPES) or any(isinstance(e, exp.DataType) for e in dt.find_all(exp.DataType)
                                                          if e is not dt):
            raise bad
        out = dt.sql(dialect=self.sqlglot)
        try:  # what we render must read back as a type in the same dialect
            exp.DataType.build(out, dialect=self.sqlglot, udt=False)
        except (ParseError, ValueError, TypeError):
            raise bad from None
        return out

    def parse_check(self, sql: str) -> None:
        """Golden tests: the statement parses in this dialect."""
        sqlglot.parse_one(sql, read=self.sqlglot)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
