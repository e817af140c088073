"""Issue 17 (4): foreign keys in the create spec: validated against the referenced table, enforced
where the engine enforces them (DuckDB, PostgreSQL, MariaDB), informational on Redshift."""

from __future__ import annotations

import pytest

from shipyard.propagator.dialects import get_dialect
from shipyard.propagator.layout import parse_key
from shipyard.propagator.plan import TableInfo, plan_create
from shipyard.propagator.specs import parse_create

CUSTOMERS = {"column_specification": {"id": "INTEGER", "name": "VARCHAR(50)"}, "primary_key": ["id"],
             "dist_key": "id", "sort_key": ["id"]}
ORDERS = {"column_specification": {"id": "INTEGER", "customer_id": "INTEGER"}, "primary_key": ["id"],
          "dist_key": "id", "sort_key": ["id"],
          "foreign_keys": [{"columns": ["customer_id"], "references": {"table": "customers", "columns": ["id"]}}]}


def _failed_with(h, o, what):
    assert o.status == "failed", o
    assert what in h.report(o)["what"], h.report(o)
    return h.report(o)


def test_a_foreign_key_is_created_and_enforced(h):
    h.create("customers", CUSTOMERS)
    h.create("orders", ORDERS)
    h.run("customers", "input/load", "c.csv", "id,name\n1,ann\n")
    assert h.run("orders", "input/load", "ok.csv", "id,customer_id\n10,1\n").status == "succeeded"
    o = h.run("orders", "input/load", "orphan.csv", "id,customer_id\n11,99\n")
    assert o.status == "failed", o  # the engine refuses a customer that does not exist
    assert h.dest.rows("orders", "id, customer_id") == [(10, 1)]


def test_a_foreign_key_is_validated_against_the_referenced_table(h):
    o = h.run("orders", "schema/create", "o.json", ORDERS)
    _failed_with(h, o, "does not exist")  # customers is not there yet
    h.create("customers", CUSTOMERS)
    bad = dict(ORDERS, foreign_keys=[{"columns": ["customer_id"], "references": {"table": "customers",
                                                                                 "columns": ["name"]}}])
    _failed_with(h, h.run("orders", "schema/create", "o2.json", bad), "must reference the primary key")
    typo = dict(ORDERS, foreign_keys=[{"columns": ["customer_id"], "references": {"table": "customers",
                                                                                  "columns": ["idd"]}}])
    r = _failed_with(h, h.run("orders", "schema/create", "o3.json", typo), "has no column")
    assert "did you mean 'id'" in r["how_to_fix"]
    assert not h.dest.table_exists("orders")


@pytest.mark.parametrize("spec,what", [
    (dict(ORDERS, foreign_keys=[{"columns": ["nope"], "references": {"table": "customers", "columns": ["id"]}}]),
     "foreign_keys names 'nope'"),
    (dict(ORDERS, foreign_keys=[{"columns": ["customer_id", "id"], "references": {"table": "customers",
                                                                                  "columns": ["id"]}}]),
     "references 1"),
    (dict(ORDERS, foreign_keys=[{"columns": ["customer_id"], "references": {"table": "cu;stomers",
                                                                            "columns": ["id"]}}]),
     "invalid table name"),
])
def test_foreign_key_specs_are_checked_before_any_io(spec, what):
    import json

    from shipyard.errors import InputError

    with pytest.raises(InputError, match="create spec") as e:
        parse_create(json.dumps(spec).encode())
    assert what in e.value.message + str(e.value.details)


def test_redshift_foreign_keys_are_informational_constraints():
    pk = parse_key("destination=redshift/database=sales/table_name=orders/schema/create/o.json")
    plan = plan_create(get_dialect("redshift"), pk, parse_create(__import__("json").dumps(ORDERS).encode()),
                       referenced={"customers": TableInfo({"id": "INTEGER"}, ["id"])})
    [create] = [s.sql for s in plan.steps if s.sql.startswith("CREATE TABLE")]
    assert 'FOREIGN KEY ("customer_id") REFERENCES "sales"."customers" ("id")' in create
