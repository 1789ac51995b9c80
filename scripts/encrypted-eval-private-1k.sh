#!/usr/bin/env bash
# The private mode on the first 1,000 MNIST test images at 2048 bits, in parts
# of 100 images appended to results/encrypted-eval-mnist-2048-private.jsonl
# (OUTPUT=label: ...-private-label.jsonl, the label-only output). Parts
# already in the file are skipped, so the run can be stopped and resumed. At
# the end, the totals are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
output=${OUTPUT:-logits}
case "$output" in
  logits) out=results/encrypted-eval-mnist-2048-private.jsonl ;;
  label) out=results/encrypted-eval-mnist-2048-private-label.jsonl ;;
  *) echo "OUTPUT must be logits or label" >&2; exit 2 ;;
esac
mkdir -p results
# PPDNN names the binary to run (default: a fresh release build of this
# checkout), so that a copy can run while the checkout is rebuilt.
if [ -z "${PPDNN:-}" ]; then
  cargo build --release --quiet
  PPDNN=./target/release/ppdnn
fi
for off in $(seq 0 100 900); do
  if grep -q "\"offset\":$off," "$out" 2>/dev/null; then continue; fi
  "$PPDNN" eval --encrypted --mode private --output "$output" --offset "$off" --limit 100 --json >> "$out"
done
python3 scripts/summarize-parts.py "$out" 100 1000
