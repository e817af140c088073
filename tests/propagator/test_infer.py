"""Issue 17 (6): `infer` prints a create spec that loads the very file it was inferred from."""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import InputError
from shipyard.propagator.infer import infer_spec

ROWS = [{"id": 1, "customer": "Ann O'Neil", "amount": 10.5, "ordered_at": "2026-01-01 10:00:00", "paid": True},
        {"id": 2, "customer": "bob, jr", "amount": 3.0, "ordered_at": "2026-01-02 11:30:00", "paid": False},
        {"id": 3, "customer": None, "amount": 7.25, "ordered_at": "2026-01-03 00:00:00", "paid": True}]


def _sample(tmp_path, fmt: str):
    path = tmp_path / f"sample.{fmt}"
    if fmt == "csv":
        def cell(v):
            return "" if v is None else (f'"{v}"' if "," in str(v) else str(v).lower() if isinstance(v, bool) else str(v))
        path.write_text("id,customer,amount,ordered_at,paid\n" + "".join(
            ",".join(cell(r[c]) for c in ROWS[0]) + "\n" for r in ROWS))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:  # Parquet carries real timestamps
        pq.write_table(pa.Table.from_pylist([{**r, "ordered_at": datetime.fromisoformat(r["ordered_at"])}
                                             for r in ROWS]), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_inferred_spec_loads_its_file(h, tmp_path, fmt):
    path = _sample(tmp_path, fmt)
    spec = infer_spec(str(path), h.dest.kind)
    assert spec["primary_key"] == ["id"] and spec["sort_key"] == ["ordered_at"], spec
    assert spec["column_specification"]["customer"].startswith("VARCHAR")
    h.create("orders", spec)
    o = h.run("orders", "input/load", path.name, path.read_bytes())
    assert o.status == "succeeded" and o.rows == 3, o
    assert h.dest.rows("orders", "id, customer") == [(1, "Ann O'Neil"), (2, "bob, jr"), (3, None)]


def test_infer_for_redshift_and_refusals(tmp_path):
    path = _sample(tmp_path, "csv")
    r = CliRunner().invoke(app, ["propagator", "infer", str(path), "--dialect", "redshift"])
    assert r.exit_code == 0, r.output
    spec = json.loads(r.output)
    assert spec["dist_key"] == "id" and spec["sort_key"] == ["ordered_at"]
    (tmp_path / "bad.csv").write_text("first name,id\nann,1\n")
    with pytest.raises(InputError, match="invalid column name"):
        infer_spec(str(tmp_path / "bad.csv"))
    (tmp_path / "empty.csv").write_text("id\n")
    with pytest.raises(InputError, match="no rows"):
        infer_spec(str(tmp_path / "empty.csv"))
