"""shipyard propagator: drop files into a bucket; tables are created, changed and loaded.

Library API: `Propagator` (runner.py), `Outcome` (outcomes.py), `parse_key` (layout.py), the
`plan_*` functions (plan/). The CLI (`shipyard propagator ...`) and the Lambda handler are clients.

Layers, each importing only those below it:

    cli, demo, aws (Lambda)          interfaces; display (what cli and demo print)
    sqs -> dispatch -> events        SQS consumer, one event's handling, the envelopes
    runner -> outcomes               process files; endings, reports, notices
    engines/ (base: the protocol)    run plans on DuckDB / PostgreSQL(+Redshift) / MySQL
    sources -> spool                 a data file as each engine reads it; temp copies
    plan/ (model, schema, data)      pure: spec + table -> statements
    duckdb_reader -> datafile        DuckDB as a file reader; what a data file holds
    specs, ledger, dialects/, layout models of spec files, the ledger, SQL flavours, key grammar
"""

from shipyard.propagator.layout import ParsedKey, parse_key
from shipyard.propagator.outcomes import Outcome
from shipyard.propagator.runner import Propagator

__all__ = ["Outcome", "ParsedKey", "Propagator", "parse_key"]
