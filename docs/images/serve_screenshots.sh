#!/usr/bin/env bash
# Regenerates the screenshots of the demo page of `nlpseq serve`
# (serve_*.png): trains the quick-start models of sentiment, ner,
# translation and next-word on the built-in samples in a temporary folder,
# exports and serves them, and runs the browser test against that server,
# which writes the screenshots.
#
#   docs/images/serve_screenshots.sh [OUTPUT_FOLDER]    (default: docs/images)
#
# PYTHON names the interpreter (default: .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
output="$(realpath -m "${1:-docs/images}")"
python="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

models=()
for app in sentiment ner translation next-word; do
    "$python" -m nlpseq "$app" train --model-dir "$work/$app"
    "$python" -m nlpseq "$app" export --model-dir "$work/$app"
    models+=(--model "$app=$work/$app/export")
done

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$python" -m nlpseq serve "${models[@]}" --rest-port "$port" --grpc-port 0 &
server=$!
url="http://127.0.0.1:$port"
"$python" - "$url" <<'EOF'
import sys, time, urllib.request
for _ in range(600):
    try:
        with urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("nlpseq serve did not become ready")
EOF
NLPSEQ_SERVE_URL="$url" NLPSEQ_SCREENSHOTS="$output" \
    "$python" -m pytest tests/test_server_page.py -q -p no:cacheprovider
