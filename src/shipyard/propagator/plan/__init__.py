"""Plans: the statements a file would run, built without any I/O.

`plan_create / plan_alter` (schema.py) and `plan_load / plan_upsert` (data.py) return a `Plan`
(model.py). An engine (engines/) runs a plan; `Plan.render()` prints it (`shipyard propagator
plan`), and golden tests parse it with sqlglot. Bad input is refused here, before anything runs.
"""

from shipyard.propagator.plan.data import check_file_columns, plan_load, plan_upsert
from shipyard.propagator.plan.model import Plan, Step, TableInfo, failure_plan, lock_id
from shipyard.propagator.plan.schema import plan_alter, plan_create

__all__ = ["Plan", "Step", "TableInfo", "check_file_columns", "failure_plan", "lock_id", "plan_alter", "plan_create",
           "plan_load", "plan_upsert"]
