"""A fake of redshift-serverless GetCredentials, which moto does not implement.

Plugged into a real boto3 client through botocore's event hooks: `before-call` returning a
response short-circuits the HTTP call; parameters are still validated by botocore first.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Iterator


@contextmanager
def fake_get_credentials(client: Any) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def answer(params: dict[str, Any], **_: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        calls.append(_body(params))
        http = SimpleNamespace(status_code=200, headers={}, content=b"")
        return (http, {
            "dbUser": "IAMR:loader", "dbPassword": f"fake-password-{len(calls)}",
            "expiration": datetime.now(timezone.utc) + timedelta(seconds=900)})

    event = "before-call.redshift-serverless.GetCredentials"
    client.meta.events.register(event, answer)
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, answer)


def _body(params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("body") or b"{}"
    return json.loads(body.decode() if isinstance(body, bytes) else body)
