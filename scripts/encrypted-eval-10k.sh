#!/usr/bin/env bash
# The full 10,000-image encrypted evaluation at 2048 bits, in parts of 250
# images appended to results/encrypted-eval-mnist-2048.jsonl. Parts already in
# the file are skipped, so the run can be stopped and resumed. At the end, the
# totals are printed. About 4 minutes a part on a quiet 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/encrypted-eval-mnist-2048.jsonl
mkdir -p results
cargo build --release --quiet
for off in $(seq 0 250 9750); do
  if grep -q "\"offset\":$off," "$out" 2>/dev/null; then continue; fi
  ./target/release/ppdnn eval --encrypted --offset "$off" --limit 250 --json >> "$out"
done
python3 scripts/summarize-parts.py "$out" 250 10000
