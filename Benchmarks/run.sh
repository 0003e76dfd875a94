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
