"""MySQL / MariaDB: `<db>` is the database; LOAD DATA LOCAL INFILE; ON DUPLICATE KEY UPDATE."""

from __future__ import annotations

from shipyard.propagator.dialects.base import Dialect


class MySQLDialect(Dialect):
    name = "mysql"
    sqlglot = "mysql"
    quote_char = "`"
    # DDL commits implicitly in MySQL (https://dev.mysql.com/doc/refman/8.0/en/implicit-commit.html):
    # schema changes are one ALTER with every clause, which is atomic on its own.
    transactional_ddl = False
    bulk = "load_data_local"
    upsert = "on_duplicate_key"
    lock = "get_lock"
    # MySQL needs a length on VARCHAR; 256 is Redshift's default for a bare VARCHAR too.
    # TIMESTAMP is DATETIME: MySQL's TIMESTAMP ends in 2038 and may update itself
    # (https://dev.mysql.com/doc/refman/8.0/en/datetime.html).
    type_overrides = {"VARCHAR": "VARCHAR(256)", "CHARACTER VARYING": "VARCHAR(256)", "TEXT": "LONGTEXT",
                      "TIMESTAMP": "DATETIME", "TIMESTAMP WITHOUT TIME ZONE": "DATETIME"}
