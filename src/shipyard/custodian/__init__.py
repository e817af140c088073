"""custodian: Cloud Custodian policies as code, run over every account on a schedule.

Library API (the CLI, `shipyard custodian ...`, is a thin client of it):
- `check_dir(DIR)` / `sync(DIR, URL)`: validate; publish an immutable bundle, flip current.json;
- `run_once(RunOptions(...))` / `run_every(...)`: a run over accounts and regions, findings
  ledger, notices, Security Hub, capped remediation;
- `open_ledger(url)`: the findings ledger (SQLite or PostgreSQL).
The c7n adapter (subprocess to its own venv) is `shipyard.custodian.c7n`, and only it.
"""

from shipyard.custodian.bundle import check_dir, load_current, sync
from shipyard.custodian.ledger import open_ledger
from shipyard.custodian.runner import RunOptions, RunReport, run_every, run_once

__all__ = ["check_dir", "load_current", "sync", "open_ledger", "RunOptions", "RunReport",
           "run_every", "run_once"]
