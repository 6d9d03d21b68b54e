#!/usr/bin/env bash
# gearbox-api end to end: start it on a free port, ask each endpoint with curl, check the
# answers, send SIGINT and require a clean exit 0.
# Usage: end_to_end.sh PATH/TO/gearbox-api [OPTION...]   (e.g. --threads 2)
set -euo pipefail
api=$1
shift
out=$(mktemp)
trap 'kill -9 $pid 2>/dev/null || true; rm -f "$out"' EXIT

"$api" --port 0 --workers 2 --quiet "$@" >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$out" && break
  sleep 0.1
done
address=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$out")
[ -n "$address" ] || { echo "no address in: $(cat "$out")"; exit 1; }

fail() { echo "FAIL: $*"; exit 1; }
get() { curl --silent --show-error --max-time 20 "http://$address$1"; }
code() { curl --silent --output /dev/null --write-out '%{http_code}' --max-time 20 "http://$address$1"; }

[ "$(get /health)" = "ok" ] || fail "/health"
get '/compute?n=10000' | grep -q '"primes":1229' || fail "/compute?n=10000 should count 1229 primes"
get '/legacy?ms=10' | grep -q 'answered by thread' || fail "/legacy"
[ "$(code '/compute?n=abc')" = 400 ] || fail "/compute?n=abc should be 400"
[ "$(code /nowhere)" = 404 ] || fail "/nowhere should be 404"

kill -INT $pid
status=0
wait $pid || status=$?
[ $status -eq 0 ] || fail "exit status $status after SIGINT: $(cat "$out")"
echo "gearbox-api end to end: ok"
