"""Invoke the jarvis Lambda from Python (boto3), as the blog's callers do.

    python examples/jarvis/invoke_lambda.py examples/jarvis/payload.json
"""

import json
import sys

import boto3

FUNCTION = "slice-slack-notifier"  # the name you deployed shipyard.jarvis.aws.handler under


def notify(payload: dict) -> dict:
    client = boto3.Session(region_name="ap-south-1").client("lambda")
    resp = client.invoke(FunctionName=FUNCTION, Payload=json.dumps(payload).encode())
    result = json.loads(resp["Payload"].read())
    if not result.get("ok"):
        # The error channel already has the report; the caller decides whether to retry.
        print(f"jarvis: {result.get('error')}: {result.get('message')} (fix: {result.get('hint')})",
              file=sys.stderr)
    return result


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(notify(json.load(f)))
