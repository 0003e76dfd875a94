#!/usr/bin/env bash
# Runs cex's benchmarks and, in the same run, the peers they are compared with.
# Usage: Benchmarks/run.sh [EVENTS]   (default 1,000,000 AMI events)
set -euo pipefail
cd "$(dirname "$0")"
events=${1:-1000000}
shared=${SHARED:-../../shared/bench}
out=${OUT:-/tmp/cex-bench}
mkdir -p "$out"
python3 -c "import panoramisk" 2>/dev/null || python3 -m pip install -q panoramisk
swift build -c release --product AMIParse >/dev/null
swift build -c release --product AudioSocketCodec >/dev/null
[ -f "$out/ami_$events.txt" ] || python3 "$shared/ami_stream_gen.py" "$events" "$out/ami_$events.txt"
echo "AMI stream: $events events, $(stat -c %s "$out/ami_$events.txt") bytes"
.build/release/AMIParse "$out/ami_$events.txt"
python3 "$shared/panoramisk_parse.py" "$out/ami_$events.txt"
.build/release/AudioSocketCodec 1000000
swift build -c release --product SpeechAccuracy >/dev/null
.build/release/SpeechAccuracy ../templates/solar-assessment.yaml
swift build -c release --product EngineLoad >/dev/null
# N concurrent calls for SECONDS each (default 60); ENGINE_SOAK=600 adds a 10-minute run at 1,000 calls.
engine_load() {
    local calls=$1 seconds=$2 call_seconds=$3 port=$((19400 + $1 % 1000))
    .build/release/EngineLoad engine --port "$port" --seconds "$seconds" --warmup 20 > "$out/engine_$calls.jsonl" &
    local engine=$!
    sleep 2
    .build/release/EngineLoad callers --port "$port" --calls "$calls" --seconds $((seconds + 2)) --call-seconds "$call_seconds" > "$out/callers_$calls.txt"
    wait "$engine"
    echo "engine, $calls calls:"; cat "$out/engine_$calls.jsonl"
}
for calls in 100 500 1000; do engine_load "$calls" "${ENGINE_SECONDS:-60}" 120; done
[ -z "${ENGINE_SOAK:-}" ] || engine_load 1000 "$ENGINE_SOAK" 120
# The same at 100 calls with the Deepgram and model clients against the provider doubles in a third process.
.build/release/EngineLoad doubles --deepgram-port 19500 --chat-port 19501 > "$out/doubles.txt" &
doubles=$!
sleep 2
.build/release/EngineLoad engine --port 19410 --seconds "${ENGINE_SECONDS:-60}" --warmup 20 --cloud 19500 19501 > "$out/engine_cloud_100.jsonl" &
cloud=$!
sleep 2
.build/release/EngineLoad callers --port 19410 --calls 100 --seconds $(( ${ENGINE_SECONDS:-60} + 2 )) --call-seconds 120 > "$out/callers_cloud_100.txt"
wait "$cloud"; kill "$doubles"
echo "engine with cloud clients, 100 calls:"; cat "$out/engine_cloud_100.jsonl"
# First agent audio after the AudioSocket connection, offline providers as `cex engine serve` runs them.
.build/release/EngineLoad greeting ../templates/solar-assessment.yaml --calls 20 --together 1
.build/release/EngineLoad greeting ../templates/solar-assessment.yaml --calls 20 --together 4
# Lead import of 1,000,000 rows, with sqlite3 .import (no validation) and the Python importer in the same run.
swift build -c release --product LeadImport >/dev/null
swift build -c release --product ReportExport >/dev/null
[ -f "$out/leads_1m.csv" ] || python3 "$shared/leads_gen.py" 1000000 "$out/leads_1m.csv" >/dev/null
.build/release/LeadImport "$out/leads_1m.csv" ../templates/solar-assessment.yaml "$out/import.sqlite"
rm -f "$out/sq.db"; /usr/bin/time -f "sqlite3 .import: %e s, %M KB" sqlite3 "$out/sq.db" ".mode csv" ".import $out/leads_1m.csv leads"
rm -f "$out/python_import.db"*; /usr/bin/time -f "python_import.py: %e s, %M KB" python3 "$shared/python_import.py" "$out/leads_1m.csv" "$out/python_import.db"
# Report export of those leads, after one settled attempt each and a call record for every third.
sqlite3 "$out/import.sqlite" < report_fill.sql
.build/release/ReportExport "$out/import.sqlite" import-bench "$out"
/usr/bin/time -f "sqlite3 -csv of the same join: %e s" sqlite3 -csv "$out/import.sqlite" < report_peer.sql > "$out/peer_export.csv"
