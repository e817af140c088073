"""Issue 17 (2): `validate` and `plan --offline` check specs and data files with no connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.propagator.offline import validate

T = "destination=redshift/database=sales/table_name=orders/"
CREATE = {"column_specification": {"id": "INTEGER", "amount": "DECIMAL(12,2)", "ts": "TIMESTAMP"},
          "primary_key": ["id"], "dist_key": "id", "sort_key": ["ts"]}


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A repository of specs, as a team keeps one; no destination is configured at all."""
    monkeypatch.delenv("SHIPYARD_DESTINATIONS__POSTGRES__URL", raising=False)
    files = {
        "schema/create/orders.json": json.dumps(CREATE),
        "schema/update/city.json": json.dumps({"operation_type": "add", "column_specification": {"city": "VARCHAR(30)"}}),
        "input/update/good.csv": "id,amount,city\n1,2.5,Pune\n",
    }
    for rel, body in files.items():
        p = tmp_path / "specs" / T / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return tmp_path / "specs"


def _files(repo: Path) -> list[str]:
    return sorted(str(p) for p in repo.rglob("*") if p.is_file())


def test_a_good_repository_validates_and_later_files_see_earlier_specs(repo):
    checks = validate(_files(repo))
    assert [(c.operation, c.ok) for c in checks] == [("create", True), ("alter", True), ("upsert", True)], checks
    assert any("DISTKEY" in s for s in checks[0].sql)  # planned for Redshift, from destination=redshift


@pytest.mark.parametrize("rel,body,what", [
    ("schema/create/bad.json", {"column_specification": {"id": "INTEGER; DROP TABLE x"}, "dist_key": "id",
                                "sort_key": ["id"]}, "is not a redshift data type"),
    ("schema/create/nokeys.json", {"column_specification": {"id": "INTEGER"}}, "needs dist_key and sort_key"),
    ("schema/update/dup.json", {"operation_type": "add", "column_specification": {"amount": "INTEGER"}}, "already exists"),
    ("input/load/typo.csv", "id,amuont\n1,2\n", "does not have"),
    ("input/update/nokey.csv", "amount\n1\n", "lacks primary key"),
    ("input/load/nohead.csv", "", "empty"),
])
def test_each_problem_is_reported_without_a_connection(repo, rel, body, what):
    p = repo / T / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body if isinstance(body, str) else json.dumps(body))
    bad = [c for c in validate(_files(repo)) if not c.ok]
    assert len(bad) == 1 and bad[0].path == str(p) and what in bad[0].message, bad
    assert bad[0].hint


def test_the_dialect_can_be_chosen(repo):
    # The same create spec on MySQL: no DISTKEY; VARCHAR without length becomes VARCHAR(256).
    checks = validate(_files(repo), dialect="mysql")
    assert all(c.ok for c in checks) and not any("DISTKEY" in s for s in checks[0].sql)


def test_cli_validate_exit_codes_and_json(repo):
    r = CliRunner().invoke(app, ["propagator", "validate", "--json", *_files(repo)])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["ok"] for x in r.output.splitlines()] == [True, True, True]
    (repo / T / "input/load").mkdir()
    (repo / T / "input/load/typo.csv").write_text("id,amuont\n1,2\n")
    r = CliRunner().invoke(app, ["propagator", "validate", *_files(repo)])
    assert r.exit_code == 1 and "invalid" in r.output and "amount" in r.output, r.output


def test_plan_offline_shows_create_and_alter_sql_and_says_what_needs_the_table(repo):
    r = CliRunner().invoke(app, ["propagator", "plan", "--offline", "--bucket", str(repo), T + "schema/update/city.json"])
    assert r.exit_code == 0, r.output
    assert 'ALTER TABLE "sales"."orders" ADD COLUMN "city" VARCHAR(30)' in r.output
    r = CliRunner().invoke(app, ["propagator", "plan", "--offline", "--dialect", "postgres", "--bucket", str(repo),
                                 T + "schema/create/orders.json"])
    assert r.exit_code == 0 and 'CREATE TABLE "orders"' in r.output and "DISTKEY" not in r.output, r.output
    r = CliRunner().invoke(app, ["propagator", "plan", "--offline", "--bucket", str(repo), T + "input/update/good.csv"])
    assert r.exit_code != 0 and "needs the live table" in str(r.exception), r.output


def test_foreign_keys_are_checked_against_the_referenced_tables_spec(tmp_path):
    """Issue 17 (4), offline: a foreign key is checked against the create spec of the table it
    references when that spec is among the files, even when it sorts after the one referencing it."""
    db = tmp_path / "specs" / "destination=postgres" / "database=sales"

    def spec(table: str, body: dict) -> Path:
        p = db / f"table_name={table}" / "schema" / "create" / f"{table}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(body))
        return p

    zones = spec("zones", {"column_specification": {"code": "VARCHAR(8)", "name": "TEXT"}, "primary_key": ["code"]})
    good = spec("accounts", {"column_specification": {"id": "INTEGER", "zone": "VARCHAR(8)"}, "primary_key": ["id"],
                             "foreign_keys": [{"columns": ["zone"], "references": {"table": "zones", "columns": ["code"]}}]})
    bad = spec("bills", {"column_specification": {"id": "INTEGER", "zone": "VARCHAR(8)"}, "primary_key": ["id"],
                         "foreign_keys": [{"columns": ["zone"], "references": {"table": "zones", "columns": ["name"]}}]})
    typo = spec("calls", {"column_specification": {"id": "INTEGER", "zone": "VARCHAR(8)"}, "primary_key": ["id"],
                          "foreign_keys": [{"columns": ["zone"], "references": {"table": "zones", "columns": ["cod"]}}]})
    elsewhere = spec("deals", {"column_specification": {"id": "INTEGER", "rep": "INTEGER"}, "primary_key": ["id"],
                               "foreign_keys": [{"columns": ["rep"], "references": {"table": "reps", "columns": ["id"]}}]})
    checks = {Path(c.path).name: c for c in validate([str(p) for p in (good, bad, typo, elsewhere, zones)])}
    assert checks["accounts.json"].ok and checks["zones.json"].ok, checks
    assert not checks["bills.json"].ok and "must reference the primary key of sales.zones (code)" in checks["bills.json"].message
    assert not checks["calls.json"].ok and "has no column(s) cod" in checks["calls.json"].message
    assert "did you mean 'code'" in (checks["calls.json"].hint or "")
    assert checks["deals.json"].ok  # reps' spec was not given: left to the live check
