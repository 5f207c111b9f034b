#!/usr/bin/env bash
# Load test of `sora serve` on loopback with wrk (Debian package `wrk`): single-row latency
# percentiles and rows per second at 1, 8 and 64 concurrent connections, a run with one bad
# request in five mixed in, a run with slowloris connections held open beside the load
# (benches/slowloris.py), and beside them `sora predict` on the same rows in-process.
#
#   bash benches/serve.sh            # DURATION=10s PORT=18080 SLOW=200 by default
#
# The model is the Taiwan credit-default model (`sora train`, balanced class weights, seed
# 42), trained into target/serve-bench/model on the first run. The request bodies are the
# first 2,000 rows of the file (sent cyclically), one row per request.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
SLOW=${SLOW:-200}
WORK=target/serve-bench
DATA=data/credit_default_taiwan/credit_default.csv
mkdir -p "$WORK"

command -v wrk >/dev/null || { echo "installing wrk (apt-get install -y wrk)"; apt-get install -y wrk >/dev/null; }
cargo build --release --bin sora
SORA=target/release/sora

if [ ! -f "$WORK/model/model.safetensors" ]; then
  "$SORA" train --data "$DATA" --target default_payment_next_month --class-weights balanced \
    --seed 42 --progress quiet --out "$WORK/model" > "$WORK/train.log"
fi

"$SORA" serve --model "$WORK/model" --addr "127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.log" && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT"

# One JSON body per row (types from GET /v1/model), and the same rows as a CSV for `sora predict`.
curl -s "$URL/v1/model" > "$WORK/model.json"
python3 - "$DATA" "$WORK" <<'PY'
import csv, json, sys
data, work = sys.argv[1], sys.argv[2]
model = json.load(open(f"{work}/model.json"))
rows = list(csv.DictReader(open(data)))[:2000]
with open(f"{work}/bodies.jsonl", "w") as out:
    for r in rows:
        row = {c["name"]: (None if r[c["name"]] == "" else
                           float(r[c["name"]]) if c["type"] == "number" else r[c["name"]])
               for c in model["input"]}
        out.write(json.dumps({"row": row}) + "\n")
with open(f"{work}/rows.csv", "w", newline="") as out:
    w = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
PY
echo "one request: curl -s -X POST $URL/v1/predict -d \"\$(head -1 $WORK/bodies.jsonl)\""
curl -s -X POST "$URL/v1/predict" -d "$(head -1 "$WORK/bodies.jsonl")"; echo

export BODIES="$WORK/bodies.jsonl"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
run() { # connections, bad_every
  local c=$1 threads=$(( $1 < 2 ? 1 : 2 ))
  echo "=== $c connection(s), BAD_EVERY=$2: wrk -t$threads -c$c -d$DURATION --latency -s benches/serve_wrk.lua $URL/v1/predict"
  BAD_EVERY=$2 wrk -t$threads -c"$c" -d"$DURATION" --latency -s benches/serve_wrk.lua "$URL/v1/predict" \
    | grep -E "Latency |50%|90%|99%|Requests/sec|checked|Non-2xx|Socket errors"
}
curl -s -o /dev/null -X POST "$URL/v1/predict" -d "$(head -1 "$WORK/bodies.jsonl")"  # warm-up
for c in 1 8 64; do run "$c" 0; done
run 64 5

echo "=== server metrics"
curl -s "$URL/metrics" | grep -E '^sora_(batch_rows_(count|sum)|rows_scored_total|scoring_errors_total|http_requests_total)'
kill -TERM $SERVER; wait $SERVER || true

# The same load without batching: every request is its own forward pass.
"$SORA" serve --model "$WORK/model" --addr "127.0.0.1:$PORT" --max-batch-rows 1 > "$WORK/serve1.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve1.log" && break; sleep 0.1; done
echo "=== without batching: sora serve --max-batch-rows 1"
run 64 0
kill -TERM $SERVER; wait $SERVER || true

# The same load with $SLOW slowloris connections beside it: each trickles a request head that
# never ends, is closed by the header timeout (2 s here) and opened again at once.
"$SORA" serve --model "$WORK/model" --addr "127.0.0.1:$PORT" --header-timeout-ms 2000 > "$WORK/serve-slow.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve-slow.log" && break; sleep 0.1; done
echo "=== --header-timeout-ms 2000, without slow clients"
run 64 0
echo "=== --header-timeout-ms 2000, $SLOW slowloris connections beside the load"
python3 benches/slowloris.py 127.0.0.1 "$PORT" "$SLOW" > "$WORK/slowloris.txt" &
SLOWLORIS=$!
sleep 1
run 64 0
kill -TERM $SLOWLORIS; wait $SLOWLORIS
cat "$WORK/slowloris.txt"
curl -s "$URL/metrics" | grep -E '^sora_(connections_|connection_limit|timeouts_total)'
kill -TERM $SERVER; wait $SERVER || true; trap - EXIT

echo "=== in-process scoring, same rows: sora predict --data $WORK/rows.csv (2,000 rows)"
TIMEFORMAT='sora predict wall %R s'
time "$SORA" predict --model "$WORK/model" --data "$WORK/rows.csv" --out "$WORK/predict.csv"
python3 - "$DATA" "$WORK" <<'PY'
import csv, sys
data, work = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(data)))
big = f"{work}/rows30k.csv"
with open(big, "w", newline="") as out:
    w = csv.DictWriter(out, fieldnames=list(rows[0].keys())); w.writeheader(); w.writerows(rows)
PY
echo "=== in-process scoring, the whole file: sora predict --data $WORK/rows30k.csv (30,000 rows)"
time "$SORA" predict --model "$WORK/model" --data "$WORK/rows30k.csv" --out "$WORK/predict30k.csv"

tail -2 "$WORK/serve.log"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
