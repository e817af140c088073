"""`shipyard photon demo`: a canary on the local target, with nothing to set up but HAProxy.

1. deploys v1 of the embedded demo app (shipyard.photon.demo_app) as service `demo`, env `demo`;
2. starts a client loop against the endpoint;
3. rolls out v2 as a canary (10% for 3s, then 100% for 2s) — the loop sees no failure;
4. rolls out v3, which passes /health but fails 30% of requests — rolled back automatically;
5. prints what the client saw, the status, and terminates (unless --keep).
State goes to the usual state dir (.shipyard/photon/demo/demo); notices to the notifier.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from shipyard.console import console, print_table
from shipyard.photon.clientloop import ClientLoop
from shipyard.photon.model import load
from shipyard.photon.runner import Photon


def demo_file(folder: Path, version: str, strategy: dict[str, Any], **env: str) -> Path:
    doc = {
        "service": "demo", "env": "demo", "version": version,
        "local": {"command": [sys.executable, "-m", "shipyard.photon.demo_app", "--port", "${PORT}"]},
        "config": {"vars": {"VERSION": version, "GREETING": "hello from photon", **env}},
        "deploy": {"strategy": strategy, "bake": "2s",
                   "gates": {"max_error_rate": 0.05, "window": "5s", "min_requests": 20}},
    }
    path = folder / f"deployment-{version}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def run_demo(keep: bool = False) -> None:
    photon = Photon(progress=_say)
    with tempfile.TemporaryDirectory(prefix="photon-demo-") as tmp:
        folder = Path(tmp)
        canary = {"type": "canary", "percent": 10, "bake": "3s"}
        console.rule("[bold]1. v1, the first release")
        first = photon.apply(load(demo_file(folder, "v1", {"type": "blue_green"})))
        console.print(f"v1 is live at {first.endpoint}")
        loop = ClientLoop(first.endpoint or "", clients=2, pause=0.005)
        loop.start()
        console.rule("[bold]2. v2 as a canary (10% for 3s, then 100% for 2s) under a client loop")
        good = photon.apply(load(demo_file(folder, "v2", canary)))
        console.print(f"outcome: [green]{good.status}[/]; failed requests so far: {loop.failed}")
        console.rule("[bold]3. v3 passes /health but fails 30% of requests")
        bad = photon.apply(load(demo_file(folder, "v3", canary, FAIL_RATE="0.3")))
        console.print(f"outcome: [red]{bad.status}[/]: {bad.reason}")
        loop.stop()
        print_table("what the client loop saw", ["answered by", "requests"], sorted(loop.bodies.items()))
        print_table("statuses", ["HTTP status (0 = no answer)", "requests"], sorted(loop.statuses.items()))
        status = photon.status("demo", "demo")
        console.print(f"live now: {status['live']['release']} {status['live']['version']} at {status['endpoint']}")
        if keep:
            console.print("kept running; stop it with `shipyard photon apply -f ... --terminate` or "
                          "`shipyard photon ls`")
        else:
            photon.terminate("demo", "demo")
            console.print("terminated the demo env")


def _say(e: dict[str, Any]) -> None:
    if e["kind"] == "step":
        console.print(f"  step {e['step']}/{e['steps']}: {e['percent']}% to the new release")
