"""The bucket's key layout (DESIGN.md), parsed and validated before any I/O.

```
destination=<dest>/database=<db>/table_name=<table>/schema/create/<name>.json   create table
destination=<dest>/database=<db>/table_name=<table>/schema/update/<name>.json   add / drop columns
destination=<dest>/database=<db>/table_name=<table>/input/load/<name>.csv       append rows
destination=<dest>/database=<db>/table_name=<table>/input/update/<name>.csv     upsert rows
destination=<dest>/database=<db>/table_name=<table>/succeeded/<name>            processed
destination=<dest>/database=<db>/table_name=<table>/failed/<name>(.error.json)  rejected
```

`parse_key` answers three ways:
- a `ParsedKey` whose `pending` is True: a file to process;
- a `ParsedKey` whose `state` is "succeeded" / "failed": already processed, never again;
- `OutsideLayout` (an InputError) for anything else: the runner skips it with a log line.

Identifiers inside an otherwise well-formed key (a table name with a quote, a semicolon, a
space) are NOT a reason to skip: `ParsedKey.check_identifiers()` raises an InputError so the
file goes to failed/ with a report, where its author sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal

from shipyard.errors import InputError
from shipyard.store.base import validate_key

Operation = Literal["create", "alter", "load", "upsert"]

# (folder, sub-folder) -> operation
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("schema", "create"): "create",
    ("schema", "update"): "alter",
    ("input", "load"): "load",
    ("input", "update"): "upsert",
}

# Data files the loaders read, by suffix (longest first); schema files are always JSON.
DATA_SUFFIXES = (".csv.gz", ".csv", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".jsonl", ".ndjson",
                 ".json", ".parquet")
SCHEMA_SUFFIXES = (".json",)

# Unquoted-safe identifiers only: letters, digits, underscore, not starting with a digit.
# 63 is PostgreSQL's NAMEDATALEN-1 (https://www.postgresql.org/docs/current/limits.html), the
# smallest limit of the engines we load (MySQL 64, Redshift 127, DuckDB none).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Our own bookkeeping tables and columns start with this; users may not name theirs so.
RESERVED_PREFIX = "_shipyard"


# Names that copy tools and editors give a file while they write it: never loaded. Drop files
# safely by writing them under such a name (or elsewhere) and renaming them when complete.
TEMP_PREFIXES = (".", "~$", ".~lock.")
TEMP_SUFFIXES = (".tmp", "._copying_", ".part", ".partial", ".crdownload", ".swp", ".filepart")


def is_temp_name(name: str) -> bool:
    """A dotfile, or a name copy tools use while writing (`*.tmp`, `*._COPYING_`, `*.part`...)."""
    return name.startswith(TEMP_PREFIXES) or name.lower().endswith(TEMP_SUFFIXES)


class OutsideLayout(InputError):
    """The key is not one the propagator processes (skipped, with the reason)."""


def check_identifier(name: str, what: str) -> str:
    """A validated, lower-cased identifier, or an InputError saying how to fix it.

    Identifiers are lower-cased (PostgreSQL and Redshift fold unquoted names to lower case) and
    always quoted when rendered, so the only thing that matters is that they are plain words.
    """
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        bad = "".join(sorted({c for c in str(name) if not (c.isalnum() or c == "_")}))
        detail = f" (it contains {bad!r})" if bad else ""
        raise InputError(
            f"invalid {what} {name!r}{detail}",
            hint=f"a {what} must be 1-63 letters, digits or underscores and not start with a digit, "
            "e.g. 'order_items'",
        )
    if name.lower().startswith(RESERVED_PREFIX):
        raise InputError(f"invalid {what} {name!r}: names starting with {RESERVED_PREFIX!r} are reserved",
                         hint="pick another name")
    return name.lower()


@dataclass(frozen=True)
class ParsedKey:
    key: str
    destination: str
    database: str
    table: str
    # "pending" for schema/ and input/ files; otherwise the folder the file sits in.
    state: Literal["pending", "succeeded", "failed"]
    operation: Operation | None
    name: str
    # The key's own `destination=../database=../table_name=../` folder, as spelled in the bucket:
    # succeeded/ and failed/ go beside the file even when names are lower-cased for SQL.
    folder: str = ""
    # Where the file goes when it succeeds: succeeded/<name>, or a unique name when that is taken
    # (the runner chooses it; nothing archived is ever overwritten).
    archive: str | None = None

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def table_prefix(self) -> str:
        """`destination=../database=../table_name=../` (with the trailing slash)."""
        return self.folder or f"destination={self.destination}/database={self.database}/table_name={self.table}/"

    @property
    def succeeded_key(self) -> str:
        return self.table_prefix + "succeeded/" + self.name

    @property
    def archive_key(self) -> str:
        return self.archive or self.succeeded_key

    @property
    def failed_key(self) -> str:
        return self.table_prefix + "failed/" + self.name

    @property
    def error_key(self) -> str:
        return self.failed_key + ".error.json"

    @property
    def lock_name(self) -> str:
        """What the per-table writer lock is named after."""
        return f"{self.destination}/{self.database}/{self.table}"

    def check_identifiers(self) -> "ParsedKey":
        """Validated and lower-cased destination, database and table names (InputError if bad)."""
        dest = self.destination.lower()
        if not re.match(r"^[a-z][a-z0-9_-]{0,62}$", dest):
            raise InputError(f"invalid destination name {self.destination!r}",
                             hint="destination=<name> names a configured destination, e.g. destination=postgres")
        return ParsedKey(
            key=self.key,
            destination=dest,
            database=check_identifier(self.database, "database name"),
            table=check_identifier(self.table, "table name"),
            state=self.state,
            operation=self.operation,
            name=self.name,
            folder=self.table_prefix,
            archive=self.archive,
        )


_PART = re.compile(r"^(destination|database|table_name)=(.*)$")


def parse_key(key: str) -> ParsedKey:
    """Parse `key` (relative to the bucket). OutsideLayout if it is not a propagator key."""
    validate_key(key)  # refuses '..', '.', absolute paths, backslashes, NUL (an InputError)
    parts = key.split("/")
    if len(parts) < 5:
        raise OutsideLayout(f"{key!r} is outside the layout: too few folders",
                            hint="use destination=<d>/database=<db>/table_name=<t>/(schema|input)/...")
    names = []
    for part, want in zip(parts[:3], ("destination", "database", "table_name")):
        m = _PART.match(part)
        if not m or m.group(1) != want or not m.group(2):
            raise OutsideLayout(f"{key!r} is outside the layout: expected {want}=<name>, found {part!r}",
                                hint="use destination=<d>/database=<db>/table_name=<t>/(schema|input)/...")
        names.append(m.group(2))
    dest, db, table = names
    rest = parts[3:]
    name = rest[-1]
    if not name or name.startswith("."):
        raise OutsideLayout(f"{key!r}: hidden or empty file name")
    if is_temp_name(name):
        raise OutsideLayout(f"{key!r}: a temporary name (a file still being written); it is picked up "
                            "once renamed")
    folder = "/".join(parts[:3]) + "/"
    if rest[0] in ("succeeded", "failed"):
        return ParsedKey(key, dest, db, table, rest[0], None, "/".join(rest[1:]), folder)  # type: ignore[arg-type]
    if len(rest) != 3 or (rest[0], rest[1]) not in OPERATIONS:
        raise OutsideLayout(
            f"{key!r} is outside the layout: {'/'.join(rest[:-1])!r} is not one of "
            "schema/create, schema/update, input/load, input/update",
            hint="put the file in one of those folders",
        )
    op = OPERATIONS[(rest[0], rest[1])]
    lower = name.lower()
    allowed = SCHEMA_SUFFIXES if rest[0] == "schema" else DATA_SUFFIXES
    if not lower.endswith(allowed):
        raise OutsideLayout(f"{key!r}: {rest[0]}/{rest[1]} takes {', '.join(allowed)} files",
                            hint="rename the file with one of those suffixes")
    return ParsedKey(key, dest, db, table, "pending", op, name, folder)


def table_key_prefix(destination: str, database: str, table: str) -> str:
    return f"destination={destination}/database={database}/table_name={table}/"


# The folders the propagator writes to. Its own moves (a server-side copy) and error reports
# create ObjectCreated events too; they must never be processed.
OWN_FOLDERS = ("succeeded", "failed")


def own_folder(key: str) -> str | None:
    """'succeeded' or 'failed' if `key` is in a folder the propagator writes to, else None.

    The layout puts them right after the table: destination=/database=/table_name=/<folder>/...
    """
    parts = key.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.startswith("table_name=") and parts[i + 1] in OWN_FOLDERS:
            return parts[i + 1]
    return None


def table_of(key: str) -> str | None:
    """`destination=../database=../table_name=..` of a layout key (lower-cased), else None."""
    parts = key.split("/")
    if len(parts) > 3 and parts[0].startswith("destination=") and parts[2].startswith("table_name="):
        return "/".join(parts[:3]).lower()
    return None


def unique_name(name: str, taken: Callable[[str], bool], stamp: str) -> str:
    """`name` if it is free, else `<base>.<stamp>[-n]<suffix>` (the data or spec suffix kept, so
    the archived file still says what it is): the first of those that is free."""
    if not taken(name):
        return name
    lower = name.lower()
    suffix = next((s for s in (*DATA_SUFFIXES, *SCHEMA_SUFFIXES) if lower.endswith(s)), "")
    base = name[: len(name) - len(suffix)] if suffix else name
    n = 0
    while True:
        candidate = f"{base}.{stamp}{f'-{n}' if n else ''}{suffix}"
        if not taken(candidate):
            return candidate
        n += 1
