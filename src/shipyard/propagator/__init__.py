"""shipyard propagator: drop files into a bucket; tables are created, changed and loaded.

Library API: `Propagator` (runner.py), `Outcome`, `parse_key` (layout.py), the `plan_*`
functions (plan.py). The CLI (`shipyard propagator ...`) and the Lambda handler are clients.
"""

from shipyard.propagator.layout import ParsedKey, parse_key
from shipyard.propagator.runner import Outcome, Propagator

__all__ = ["Outcome", "ParsedKey", "Propagator", "parse_key"]
