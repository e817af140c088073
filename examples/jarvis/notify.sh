#!/usr/bin/env bash
# POST a payload to `shipyard jarvis serve` (callers outside AWS).
#   JARVIS_URL=http://jarvis.internal:8087 JARVIS_SECRET=... examples/jarvis/notify.sh examples/jarvis/payload.json
set -euo pipefail
payload="${1:?usage: notify.sh PAYLOAD.json}"
curl --fail-with-body -sS -X POST "${JARVIS_URL:-http://127.0.0.1:8087}/notify" \
  -H "Content-Type: application/json" \
  -H "X-Shipyard-Secret: ${JARVIS_SECRET:?set JARVIS_SECRET to the SHIPYARD_JARVIS__HTTP_SECRET of the server}" \
  --data-binary @"$payload"
echo
