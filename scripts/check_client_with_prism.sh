#!/usr/bin/env bash
# Manual check (not CI): run every request of the Twilio REST client
# (src/telephony/client) against Prism, an OpenAPI mock server that answers 2xx only to
# requests that match Twilio's own spec and 422 otherwise.
#
# Usage (from the repo root):
#   scripts/check_client_with_prism.sh [SPEC]
# SPEC defaults to /work/shared/twilio/twilio_api_v2010.json (the full spec from
# twilio/twilio-oai d50069b4, with explode encoding for array fields); the committed
# subset tests/data/twilio_openapi_subset.json works too.
#
# Needs node/npx (downloads @stoplight/prism-cli@5 once) and cargo. Uses the shared target
# dir when CARGO_TARGET_DIR is set. The test is #[ignore]d; it reads PRISM_URL.
set -euo pipefail

SPEC="${1:-/work/shared/twilio/twilio_api_v2010.json}"
PORT="${PRISM_PORT:-4010}"
LOG="$(mktemp -t prism.XXXXXX.log)"

# Own process group, so that stopping it also stops the node process npx starts.
setsid npx -y @stoplight/prism-cli@5 mock -h 127.0.0.1 -p "$PORT" "$SPEC" >"$LOG" 2>&1 &
PRISM_PID=$!
trap 'kill -- -"$PRISM_PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
    if grep -q "Prism is listening" "$LOG"; then break; fi
    if ! kill -0 "$PRISM_PID" 2>/dev/null; then cat "$LOG"; exit 1; fi
    sleep 1
done
grep -q "Prism is listening" "$LOG" || { echo "Prism did not start"; cat "$LOG"; exit 1; }

status=0
PRISM_URL="http://127.0.0.1:$PORT" cargo test --lib \
    telephony::client::conformance_tests::every_client_request_is_accepted_by_prism \
    -- --ignored --nocapture || status=$?

echo "--- Prism's verdicts (request line, response status, violations) ---"
sed -n '/Prism is listening/,$p' "$LOG" | grep -E "Request received|Responding with \"|\[VALIDATOR\]" || true
exit "$status"
