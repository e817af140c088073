"""custodian: Cloud Custodian policies as code, run over every account on a schedule.

Library API (the CLI, `shipyard custodian ...`, is a thin client of it):
- `check_dir(DIR)` / `sync(DIR, URL)`: validate; publish an immutable bundle, flip current.json;
- `run_once(RunOptions(...))` / `run_every(...)`: a run over accounts and regions, findings
  ledger, notices, Security Hub, capped remediation;
- `open_ledger(url)`: the findings ledger (SQLite or PostgreSQL).
The c7n adapter (subprocess to its own venv) is `shipyard.custodian.c7n`, and only it.
"""

import importlib
from typing import Any

# name -> module; loaded on first use (PEP 562), so `shipyard --help` does not import boto3.
_API = {
    "check_dir": "bundle", "load_current": "bundle", "sync": "bundle", "open_ledger": "ledger",
    "RunOptions": "runner", "RunReport": "runner", "run_every": "runner", "run_once": "runner",
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'shipyard.custodian' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shipyard.custodian.{_API[name]}"), name)
