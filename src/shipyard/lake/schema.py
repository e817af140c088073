"""The lake's schema: inferred once from the raw JSON, then kept and only ever widened.

A type is a small JSON-able tree so it can live in the manifest:
  "BIGINT" | "DOUBLE" | "VARCHAR" | "BOOLEAN" | "DATE" | "TIME" | "TIMESTAMP" |
  "TIMESTAMP WITH TIME ZONE" | "DECIMAL(p,s)" | {"struct": {name: type}} | {"list": type} |
  {"map": [key, value]}

Rules (see docs/lake.md): a new field is added; a value that fits the kept type is cast to it
(BIGINT into DOUBLE, DATE into TIMESTAMP, any scalar into VARCHAR); a value that does not
(DOUBLE into BIGINT, text into TIMESTAMP, an object into a number) is a conflict, reported
with the file and line. Why not let DuckDB cast: its JSON reader silently turns 2.5 into 2
and true into 1 when a column type is given, which would corrupt data without a word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import duckdb

from shipyard.lake.sql import q

Type = Any  # str | dict

_INTS = {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
         "hugeint", "uhugeint"}
TIMES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
NULL = "NULL"


def from_duckdb(t: Any) -> Type:
    """A DuckDBPyType (as detected by read_json) to our tree, normalised for portability.

    UUID stays "UUID" here so a column declared UUID can check its values; a column that is
    only *inferred* as UUID is kept as text (merge), since Spark and Hive read Parquet's UUID
    type as plain binary."""
    tid = t.id
    s = str(t)
    if tid == "uuid":
        return "UUID"
    if tid == "struct":
        return {"struct": {name: from_duckdb(ct) for name, ct in t.children}}
    if tid == "list":
        return {"list": from_duckdb(t.children[0][1])}
    if tid == "map":
        return {"map": [from_duckdb(t.children[0][1]), from_duckdb(t.children[1][1])]}
    if s == '"NULL"' or tid == "null" or s == "NULL":
        return NULL
    if tid in _INTS:
        return "UBIGINT" if tid == "ubigint" else "BIGINT"
    if tid == "ubigint":
        return "UBIGINT"
    if tid in ("float", "double"):
        return "DOUBLE"
    if tid == "decimal":
        return s
    if tid == "boolean":
        return "BOOLEAN"
    if tid == "date":
        return "DATE"
    if tid in ("time", "time with time zone"):
        return "TIME"
    if tid in ("timestamp", "timestamp_ms", "timestamp_ns", "timestamp_s"):
        return "TIMESTAMP"
    if tid == "timestamp with time zone":
        return "TIMESTAMP WITH TIME ZONE"
    # VARCHAR, JSON (mixed types), UUID (kept as text: Athena and Spark have no UUID type).
    return "VARCHAR"


def from_sql(s: str) -> Type:
    """A user-declared SQL type (columns = {...}) to our tree, via DuckDB's own parser."""
    return from_duckdb(duckdb.sqltype(s))


def to_sql(t: Type) -> str:
    if isinstance(t, str):
        return "VARCHAR" if t == NULL else t
    if "struct" in t:
        return "STRUCT(" + ", ".join(f"{q(n)} {to_sql(c)}" for n, c in t["struct"].items()) + ")"
    if "list" in t:
        return to_sql(t["list"]) + "[]"
    k, v = t["map"]
    return f"MAP({to_sql(k)}, {to_sql(v)})"


def show(t: Type) -> str:
    return to_sql(t)


def _is_scalar(t: Type) -> bool:
    return isinstance(t, str)


def _infer(t: Type) -> Type:
    """The type a new field gets: what was found, with UUIDs as text (see from_duckdb)."""
    if t == "UUID":
        return "VARCHAR"
    if isinstance(t, dict):
        if "struct" in t:
            return {"struct": {n: _infer(c) for n, c in t["struct"].items()}}
        if "list" in t:
            return {"list": _infer(t["list"])}
        return {"map": [_infer(t["map"][0]), _infer(t["map"][1])]}
    return t


def merge(kept: Type | None, found: Type, path: str = "") -> tuple[Type | None, list[tuple[str, Type, Type]]]:
    """Widen `kept` by what a new batch `found`; conflicts are (path, kept, found)."""
    if kept is None or kept == NULL:
        return (None if found == NULL else _infer(found)), []
    if found == NULL or found == kept:
        return kept, []
    if _is_scalar(kept) and _is_scalar(found):
        if kept == "VARCHAR":
            return kept, []  # any scalar reads as its JSON text
        if kept == "DOUBLE" and (found in ("BIGINT", "UBIGINT") or found.startswith("DECIMAL")):
            return kept, []
        if kept.startswith("DECIMAL") and found in ("BIGINT", "UBIGINT", "DOUBLE"):
            return kept, []  # declared by the user: DuckDB rounds to its scale
        if kept == "UBIGINT" and found == "BIGINT":
            return kept, []
        if kept in TIMES and found in TIMES:
            # Wider-or-equal time: DATE < TIMESTAMP ~ TIMESTAMPTZ (the session is in UTC).
            if kept != "DATE" or found == "DATE":
                return kept, []
        return kept, [(path, kept, found)]
    if isinstance(kept, dict) and isinstance(found, dict):
        if "struct" in kept and "struct" in found:
            out = dict(kept["struct"])
            conflicts: list = []
            for name, ft in found["struct"].items():
                m, c = merge(out.get(name), ft, f"{path}.{name}" if path else name)
                conflicts += c
                if m is not None:
                    out[name] = m
            return {"struct": out}, conflicts
        if "list" in kept and "list" in found:
            m, c = merge(kept["list"], found["list"], path + "[]")
            return {"list": m if m is not None else kept["list"]}, c
        if "map" in kept and "map" in found:
            mk, c1 = merge(kept["map"][0], found["map"][0], path + "{key}")
            mv, c2 = merge(kept["map"][1], found["map"][1], path + "{value}")
            return {"map": [mk or kept["map"][0], mv or kept["map"][1]]}, c1 + c2
    if kept == "VARCHAR" and isinstance(found, dict):
        return kept, []  # nested JSON read into a text column keeps its JSON text
    return kept, [(path, kept, found)]


_NUMBERS = ("BIGINT", "UBIGINT", "DOUBLE")
_TEXTS = ("VARCHAR", "UUID", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


def union(a: Type, b: Type) -> Type:
    """What DuckDB's detection over two files' rows together gives, from what it found in each
    (checked against read_json(sample_size=-1, union_by_name=true) over files pairwise): equal
    types stay; NULL takes the other; integers with floats are DOUBLE; two kinds of text (a date
    and a UUID...) are text; structs take the union of their fields; anything else mixed is
    JSON, which the lake keeps as text. So reading the files with the union never casts a value
    into a narrower type (DuckDB's silent 2.5 -> 2)."""
    if a == b:
        return a
    if a == NULL:
        return b
    if b == NULL:
        return a
    if isinstance(a, str) and isinstance(b, str):
        num = lambda t: t in _NUMBERS or t.startswith("DECIMAL")  # noqa: E731
        if num(a) and num(b):
            return "DOUBLE" if "DOUBLE" in (a, b) or a.startswith("DECIMAL") or b.startswith("DECIMAL") \
                else "BIGINT"  # DuckDB: HUGEINT, which from_duckdb keeps as BIGINT
        return "VARCHAR"
    if isinstance(a, dict) and isinstance(b, dict):
        if "struct" in a and "struct" in b:
            out = dict(a["struct"])
            for name, t in b["struct"].items():
                out[name] = union(out[name], t) if name in out else t
            return {"struct": out}
        if "list" in a and "list" in b:
            return {"list": union(a["list"], b["list"])}
        if "map" in a and "map" in b:
            return {"map": [union(a["map"][0], b["map"][0]), union(a["map"][1], b["map"][1])]}
    return "VARCHAR"


def union_schema(found: list[dict[str, Type]]) -> dict[str, Type]:
    """The union of files' detected schemas, columns in the order first found."""
    out: dict[str, Type] = {}
    for f in found:
        for name, t in f.items():
            out[name] = union(out[name], t) if name in out else t
    return out


def merge_schema(kept: dict[str, Type], found: dict[str, Type],
                 declared: dict[str, Type] | None = None) -> tuple[dict[str, Type], list]:
    """Kept columns first, then new ones in the order found; `declared` types (the config's
    `columns`) win over kept and inferred ones without moving a column."""
    declared = declared or {}
    out = {n: declared.get(n, t) for n, t in kept.items()}
    conflicts: list = []
    for name, ft in found.items():
        m, c = merge(out.get(name, declared.get(name)), ft, name)
        conflicts += c
        if m is not None:
            out[name] = m
    for name, t in declared.items():
        out.setdefault(name, t)
    return out, conflicts


# --- Other engines' spellings -------------------------------------------------------------

def to_arrow(t: Type) -> Any:
    """pyarrow type (reading S3 lakes)."""
    import pyarrow as pa  # deferred: start-up cost (pyarrow is only needed for S3 lakes)

    if isinstance(t, dict):
        if "struct" in t:
            return pa.struct([pa.field(n, to_arrow(c)) for n, c in t["struct"].items()])
        if "list" in t:
            return pa.list_(to_arrow(t["list"]))
        return pa.map_(to_arrow(t["map"][0]), to_arrow(t["map"][1]))
    simple = {
        "BIGINT": pa.int64(), "UBIGINT": pa.uint64(), "DOUBLE": pa.float64(), "VARCHAR": pa.string(),
        "BOOLEAN": pa.bool_(), "DATE": pa.date32(), "TIME": pa.time64("us"),
        "TIMESTAMP": pa.timestamp("us"), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
        NULL: pa.string(), "UUID": pa.uuid(),
    }
    if t in simple:
        return simple[t]
    if t.startswith("DECIMAL"):
        p, s = t[t.index("(") + 1:-1].split(",")
        return pa.decimal128(int(p), int(s))
    return pa.string()


@dataclass(frozen=True)
class _TypeSyntax:
    """How one engine spells the lake's types: scalars by table, nested types by template."""

    scalars: dict[str, str]
    other: str  # anything not in the table (and not a DECIMAL)
    decimal: Callable[[str], str]
    field: str  # one struct field: {name}, {type}
    struct: str  # {fields}
    array: str  # {item}
    map: str  # {key}, {value}
    sep: str = ", "

    def render(self, t: Type) -> str:
        if isinstance(t, dict):
            if "struct" in t:
                fields = self.sep.join(self.field.format(name=n, type=self.render(c)) for n, c in t["struct"].items())
                return self.struct.format(fields=fields)
            if "list" in t:
                return self.array.format(item=self.render(t["list"]))
            return self.map.format(key=self.render(t["map"][0]), value=self.render(t["map"][1]))
        if t in self.scalars:
            return self.scalars[t]
        return self.decimal(t) if t.startswith("DECIMAL") else self.other


_SPARK = _TypeSyntax(
    # A naive TIMESTAMP stays naive, as in DuckDB (Spark's TIMESTAMP is zoned).
    {"BIGINT": "BIGINT", "UBIGINT": "DECIMAL(20,0)", "DOUBLE": "DOUBLE", "VARCHAR": "STRING",
     "BOOLEAN": "BOOLEAN", "DATE": "DATE", "TIME": "STRING", "TIMESTAMP": "TIMESTAMP_NTZ",
     "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", NULL: "STRING"},
    "STRING", str, "`{name}`: {type}", "STRUCT<{fields}>", "ARRAY<{item}>", "MAP<{key}, {value}>")
# https://docs.aws.amazon.com/athena/latest/ug/data-types.html
_HIVE = _TypeSyntax(
    {"BIGINT": "bigint", "UBIGINT": "decimal(20,0)", "DOUBLE": "double", "VARCHAR": "string",
     "BOOLEAN": "boolean", "DATE": "date", "TIME": "string", "TIMESTAMP": "timestamp",
     "TIMESTAMP WITH TIME ZONE": "timestamp", NULL: "string", "UUID": "binary"},
    "string", str.lower, "{name}:{type}", "struct<{fields}>", "array<{item}>", "map<{key},{value}>", sep=",")
# https://trino.io/docs/current/connector/hive.html
_TRINO = _TypeSyntax(
    {"BIGINT": "bigint", "UBIGINT": "decimal(20,0)", "DOUBLE": "double", "VARCHAR": "varchar",
     "BOOLEAN": "boolean", "DATE": "date", "TIME": "varchar", "TIMESTAMP": "timestamp(6)",
     "TIMESTAMP WITH TIME ZONE": "timestamp(6)", NULL: "varchar", "UUID": "uuid"},
    "varchar", str.lower, '"{name}" {type}', "row({fields})", "array({item})", "map({key}, {value})")


def to_spark(t: Type) -> str:
    """Spark SQL DDL type."""
    return _SPARK.render(t)


def to_hive(t: Type) -> str:
    """Athena / Hive DDL type."""
    return _HIVE.render(t)


def to_trino(t: Type) -> str:
    """Trino type for its Hive connector."""
    return _TRINO.render(t)


def has_uuid(t: Type) -> bool:
    if isinstance(t, dict):
        if "struct" in t:
            return any(has_uuid(c) for c in t["struct"].values())
        if "list" in t:
            return has_uuid(t["list"])
        return any(has_uuid(c) for c in t["map"])
    return t == "UUID"


def field_paths(schema: dict[str, Type], prefix: str = "") -> list[str]:
    """Dotted paths of every field, nested struct fields included ('device.os')."""
    out = []
    for name, t in schema.items():
        path = prefix + name
        out.append(path)
        if isinstance(t, dict) and "struct" in t:
            out += field_paths(t["struct"], path + ".")
    return out
