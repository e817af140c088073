"""`python -m shipyard.photon.targets.local.supervise LOG -- ARGV...`: run one release, log it.

The supervisor is the release's process-group leader. It runs ARGV with stdout and stderr on
pipes and appends each line to LOG as one JSON object (`time`, `stream`, `message`), with the
values of the secrets named in PHOTON_SECRET_NAMES masked: an app that prints its API key does
not put it on disk. SIGTERM/SIGINT are passed on to the app; the supervisor exits with its code
after writing an `exit` line. Imports stay minimal: this starts once per release.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone

from shipyard.redact import redact

MAX_LINE = 16384


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: supervise LOG -- ARGV...", file=sys.stderr)
        return 2
    log_path, cmd = argv[0], argv[2:]
    names = [n for n in os.environ.get("PHOTON_SECRET_NAMES", "").split(",") if n]
    secrets = sorted({os.environ[n] for n in names if os.environ.get(n)}, key=len, reverse=True)
    release = os.environ.get("PHOTON_ROLE", "").removeprefix("release:")
    lock = threading.Lock()
    log = open(log_path, "a", encoding="utf-8", buffering=1)

    def write(stream: str, message: str, **extra: object) -> None:
        rec = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "release": release,
               "stream": stream, "message": redact(message[:MAX_LINE], secrets), **extra}
        with lock:
            log.write(json.dumps(rec, ensure_ascii=False) + "\n")

    try:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        write("photon", f"cannot start {cmd[0]!r}: {exc.strerror}", event="exit", code=127)
        return 127

    def forward(signum: int, _frame: object) -> None:
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def pump(pipe, stream: str) -> None:  # type: ignore[no-untyped-def]
        for raw in iter(pipe.readline, b""):
            write(stream, raw.decode("utf-8", "replace").rstrip("\r\n"))

    threads = [threading.Thread(target=pump, args=(child.stdout, "stdout"), daemon=True),
               threading.Thread(target=pump, args=(child.stderr, "stderr"), daemon=True)]
    for t in threads:
        t.start()
    code = child.wait()
    for t in threads:
        t.join(timeout=2)
    write("photon", f"exited with code {code}", event="exit", code=code)
    log.close()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
