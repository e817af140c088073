"""Schema files: pydantic models for create and update specs, and their JSON Schema.

create: {"column_specification": {"id": "INTEGER", ...}, "primary_key": ["id"],
         "dist_key": "uuid", "sort_key": ["time_stamp"]}
update: {"column_specification": {"city": "VARCHAR"}, "operation_type": "add"}
        {"column_specification": ["city", "state"], "operation_type": "drop"}

Parsing reports what is wrong and where: a JSON syntax error by line and column, a field
error by its path (`column_specification.id`), always with how to fix it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from shipyard.errors import InputError, did_you_mean
from shipyard.propagator.layout import check_identifier

# A schema file is a few lines; refuse anything that is clearly not one before parsing it.
MAX_SPEC_BYTES = 1 << 20


def _ident(name: str, what: str) -> str:
    try:
        return check_identifier(name, what)
    except InputError as exc:
        # pydantic turns ValueError into a located validation error
        raise ValueError(f"{exc.message}; {exc.hint}") from None


def _key_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str = Field(..., description="the referenced table, in the same database")
    columns: list[str] = Field(..., min_length=1, description="its primary key (or unique) columns")

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        return _ident(v, "table name")

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: list[str]) -> list[str]:
        return [_ident(c, "column name") for c in v]


class ForeignKey(BaseModel):
    """A foreign key: enforced by DuckDB, PostgreSQL and MySQL; informational on Redshift."""

    model_config = ConfigDict(extra="forbid")
    columns: list[str] = Field(..., min_length=1, description="columns of this table")
    references: Reference

    _norm = field_validator("columns", mode="before")(_key_list)

    @model_validator(mode="after")
    def _same_length(self) -> "ForeignKey":
        self.columns = [_ident(c, "foreign key column") for c in self.columns]
        if len(self.columns) != len(self.references.columns):
            raise ValueError(f"foreign key {self.columns} has {len(self.columns)} column(s) and references "
                             f"{len(self.references.columns)}")
        return self


# Accepted spellings -> the name used in plans (each engine maps it to its own, docs/propagator.md).
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1"}


class InputOptions(BaseModel):
    """How a table's CSV files are written; kept with the table, applied to every later load/upsert."""

    model_config = ConfigDict(extra="forbid", title="CSV input options")
    delimiter: str = Field(",", description="the one ASCII character between fields (',', ';', '|', a tab)")
    quote: str = Field('"', description="the one character around fields holding the delimiter or line breaks; "
                       "doubled inside them")
    null: str = Field("", max_length=32, description="the unquoted text that means NULL (default: an empty field)")
    header: bool = Field(True, strict=True, description="the first line names the columns; false: the fields are "
                         "the table's columns in table order")
    encoding: str = Field("utf-8", description="utf-8 or latin-1 (iso-8859-1)")
    max_bad_rows: int = Field(0, ge=0, le=1_000_000, strict=True,
                              description="up to this many bad rows are set aside in failed/<name>.rejects.csv "
                              "(line, column, reason) and the rest load; more fail the whole file (0: any "
                              "bad row fails it)")

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, v: str) -> str:
        # One ASCII byte (PostgreSQL's COPY takes no more), and none that every engine reads otherwise.
        if len(v) != 1 or not (v == "\t" or (v.isascii() and v.isprintable())) or v.isalnum() or v == "\\":
            raise ValueError(f"{v!r} must be one ASCII character, not a letter, digit, backslash or line break")
        return v

    @field_validator("null")
    @classmethod
    def _null(cls, v: str) -> str:
        if any(ch in v for ch in "\r\n\\"):
            raise ValueError("the null string cannot hold a line break or a backslash")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        if v.lower() not in ENCODINGS:
            raise ValueError(f"unknown encoding {v!r}; use one of: utf-8, latin-1")
        return ENCODINGS[v.lower()]

    @model_validator(mode="after")
    def _distinct(self) -> "InputOptions":
        if self.delimiter == self.quote:
            raise ValueError("delimiter and quote must be different characters")
        if self.delimiter in self.null or self.quote in self.null:
            raise ValueError("the null string cannot contain the delimiter or the quote")
        return self


class CreateSpec(BaseModel):
    """schema/create/<name>.json: the table's columns and keys."""

    model_config = ConfigDict(extra="forbid", title="Propagator create spec")

    column_specification: dict[str, str] = Field(
        ..., description="column name -> SQL type, in table order", min_length=1,
        examples=[{"id": "INTEGER", "name": "VARCHAR(100)", "time_stamp": "TIMESTAMP"}])
    primary_key: list[str] = Field(default_factory=list, description="columns of the primary key (optional)")
    dist_key: str | None = Field(None, description="Redshift distribution key column (required for Redshift)")
    sort_key: list[str] = Field(default_factory=list,
                                description="Redshift compound sort key (required for Redshift); "
                                "an index on other engines")
    foreign_keys: list[ForeignKey] = Field(default_factory=list,
                                           description="foreign keys to tables of the same database")
    input_options: InputOptions | None = Field(None, description="how this table's CSV files are written")

    _norm = field_validator("primary_key", "sort_key", mode="before")(_key_list)

    @field_validator("column_specification")
    @classmethod
    def _columns(cls, v: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, typ in v.items():
            n = _ident(name, "column name")
            if n in out:
                raise ValueError(f"column {name!r} is given twice (names are case-insensitive)")
            if not isinstance(typ, str) or not typ.strip():
                raise ValueError(f"column {name!r} needs a type string such as \"INTEGER\"")
            out[n] = typ.strip()
        return out

    @model_validator(mode="after")
    def _keys_name_columns(self) -> "CreateSpec":
        cols = self.column_specification
        self.primary_key = [_ident(c, "primary key column") for c in self.primary_key]
        self.sort_key = [_ident(c, "sort key column") for c in self.sort_key]
        if self.dist_key is not None:
            self.dist_key = _ident(self.dist_key, "dist key column")
        for field, names in (("primary_key", self.primary_key), ("sort_key", self.sort_key),
                             ("dist_key", [self.dist_key] if self.dist_key else [])):
            for n in names:
                if n not in cols:
                    raise ValueError(f"{field} names {n!r}, which is not in column_specification "
                                     f"({', '.join(cols)})")
            if len(set(names)) != len(names):
                raise ValueError(f"{field} names a column twice")
        for fk in self.foreign_keys:
            for n in fk.columns:
                if n not in cols:
                    raise ValueError(f"foreign_keys names {n!r}, which is not in column_specification "
                                     f"({', '.join(cols)})")
        return self


class AddColumns(BaseModel):
    """schema/update: add columns (one ALTER each, one transaction)."""

    model_config = ConfigDict(extra="forbid", title="Add columns")
    operation_type: Literal["add"]
    column_specification: dict[str, str] = Field(..., min_length=1, description="column name -> SQL type")

    _cols = field_validator("column_specification")(CreateSpec._columns.__func__)  # type: ignore[attr-defined]


class DropColumns(BaseModel):
    """schema/update: drop columns (one ALTER each, one transaction)."""

    model_config = ConfigDict(extra="forbid", title="Drop columns")
    operation_type: Literal["drop"]
    column_specification: list[str] = Field(..., min_length=1, description="names of the columns to drop")

    @field_validator("column_specification")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        out = [_ident(n, "column name") for n in v]
        if len(set(out)) != len(out):
            raise ValueError("a column is named twice")
        return out


class SetOptions(BaseModel):
    """schema/update: replace the table's CSV input options (fields left out take their defaults)."""

    model_config = ConfigDict(extra="forbid", title="Set input options")
    operation_type: Literal["options"]
    input_options: InputOptions


UpdateSpec = Annotated[Union[AddColumns, DropColumns, SetOptions], Field(discriminator="operation_type")]
_update_adapter: TypeAdapter[AddColumns | DropColumns | SetOptions] = TypeAdapter(UpdateSpec)


def create_schema() -> dict[str, Any]:
    return CreateSpec.model_json_schema()


def update_schema() -> dict[str, Any]:
    s = _update_adapter.json_schema()
    s["title"] = "Propagator update spec"
    return s


def _load_json(data: bytes, kind: str) -> Any:
    if not data.strip():
        raise InputError(f"the {kind} spec is empty", hint=f"write a JSON object; see `shipyard propagator schema {kind}`",
                         where={"line": 1, "column": 1})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"the {kind} spec is not UTF-8 (byte {e.start})", hint="save the file as UTF-8",
                         where={"line": line, "byte": e.start}) from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise InputError(
            f"the {kind} spec is not valid JSON: {e.msg}",
            hint="fix the JSON syntax at that line and column (a missing comma or quote, a trailing comma)",
            where={"line": e.lineno, "column": e.colno},
        ) from None
    except _DuplicateKey as e:
        # json.loads would keep the last of two equal keys silently: refuse rather than guess.
        raise InputError(f"the {kind} spec names {e.args[0]!r} twice",
                         hint="give each column (and each field) once", where={"field": e.args[0]}) from None
    except RecursionError:
        # Deeply nested arrays / objects exhaust the parser's stack: not a spec, and not a crash.
        raise InputError(f"the {kind} spec is not valid JSON: nested too deeply",
                         hint="a spec is a flat JSON object; see `shipyard propagator schema " + kind + "`") from None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _from_validation(exc: ValidationError, kind: str) -> InputError:
    # An unknown field is usually a misspelt one: report it before the "missing" it causes.
    errs = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    first = errs[0]
    path = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and p in ("add", "drop", "options")))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        tag = first.get("input", {}).get("operation_type") if isinstance(first.get("input"), dict) else None
        msg = f"unknown operation_type {tag!r}"
        path = "operation_type"
        hint = ("operation_type is \"add\" (column_specification: {name: type}), \"drop\" (column_specification: "
                "[names]) or \"options\" (input_options: {...})")
    elif first["type"] == "union_tag_not_found":
        msg, path = "operation_type is missing", "operation_type"
        hint = "add \"operation_type\": \"add\", \"drop\" or \"options\""
    elif first["type"] == "extra_forbidden":
        msg = f"unknown field {path!r}"
        allowed = (list(InputOptions.model_fields) if path.startswith("input_options.")
                   else list(CreateSpec.model_fields) if kind == "create"
                   else ["column_specification", "operation_type", "input_options"])
        close = did_you_mean(path.rsplit(".", 1)[-1], allowed, cutoff=0.4)
        hint = (f"{close} " if close else "") + f"the fields are: {', '.join(allowed)}"
    elif first["type"] == "missing":
        msg = f"{path} is required"
        hint = f"see `shipyard propagator schema {kind}` for the format"
    else:
        hint = f"see `shipyard propagator schema {kind}` for the format"
    more = f" (and {len(errs) - 1} more problem(s))" if len(errs) > 1 else ""
    return InputError(f"{kind} spec: {path + ': ' if path else ''}{msg}{more}", hint=hint,
                      where={"field": path or None}, problems=[
                          {"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in errs[:20]])


def _parse(data: bytes, kind: str, validate: Any) -> Any:
    if len(data) > MAX_SPEC_BYTES:
        raise InputError(f"the {kind} spec is larger than 1 MiB", hint="a spec lists columns; is this a data file?")
    obj = _load_json(data, kind)
    if not isinstance(obj, dict):
        raise InputError(f"the {kind} spec must be a JSON object", hint=f"see `shipyard propagator schema {kind}`")
    try:
        return validate(obj)
    except ValidationError as exc:
        raise _from_validation(exc, kind) from None


def parse_create(data: bytes) -> CreateSpec:
    return _parse(data, "create", CreateSpec.model_validate)


def parse_update(data: bytes) -> AddColumns | DropColumns | SetOptions:
    return _parse(data, "update", _update_adapter.validate_python)
