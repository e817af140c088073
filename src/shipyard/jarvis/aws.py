"""AWS Lambda entry point: `shipyard.jarvis.aws.handler`.

The event IS the payload, so the blog's callers work unchanged:

    lambda_client.invoke(FunctionName="slice-slack-notifier", Payload=json.dumps(payload))

Returns {"ok": true, "channel", "channel_id", "ts", ...} or {"ok": false, "error", "message",
"hint", ...}; failures are also posted to the error channel. The Jarvis instance (and its
channel cache) is kept across invocations of a warm function.
"""

from __future__ import annotations

import logging
from typing import Any

from shipyard.errors import ConfigError
from shipyard.jarvis.service import failure_dict, get_jarvis
from shipyard.redact import redact
from shipyard.settings import get_settings

log = logging.getLogger("shipyard.jarvis")


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    try:
        jarvis = get_jarvis(get_settings())
    except Exception as exc:  # settings that cannot work: say so, in the same shape
        log.exception("jarvis: cannot configure")
        return {"ok": False, "error": "not_configured", "message": redact(str(exc)),
                "hint": "check the function's environment (SLACK_BOT_TOKEN, SHIPYARD_JARVIS__*)"}
    if not jarvis.configured:
        # An outbox file inside a Lambda is lost when the sandbox goes: refuse instead.
        err = ConfigError("SLACK_BOT_TOKEN is not set in the function's environment",
                          hint="set SLACK_BOT_TOKEN (xoxb-...) on the Lambda function; see docs/jarvis.md",
                          code="not_configured")
        log.error("jarvis: %s", err)
        return failure_dict(err)
    return jarvis.deliver(event)
