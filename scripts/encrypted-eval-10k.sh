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
python3 - "$out" <<'PY'
import json, sys
parts = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda p: p["offset"])
missing = sorted(set(range(0, 10000, 250)) - {p["offset"] for p in parts})
if missing:
    sys.exit(f"parts missing at offsets {missing}: run the script again")
n = sum(p["images"] for p in parts)
correct = sum(round(p["accuracy"] * p["images"]) for p in parts)
agree = sum(p["agreement"] for p in parts)
secs = sum(p["total_s"] for p in parts)
online = sum(p["latency_s_mean"] * p["images"] for p in parts) / n
print(f"{n} images: accuracy {correct / n:.2%}, agreement {agree} of {n}, "
      f"total {secs / 3600:.2f} h ({secs / n:.2f} s per image, mean online latency {online:.2f} s)")
PY
