"""Totals of an encrypted evaluation run in parts (one `eval --json` per line).

usage: summarize-parts.py FILE STEP TOTAL
"""
import json
import sys

path, step, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
parts = sorted((json.loads(line) for line in open(path)), key=lambda p: p["offset"])
missing = sorted(set(range(0, total, step)) - {p["offset"] for p in parts})
if missing:
    sys.exit(f"parts missing at offsets {missing}: run the script again")
n = sum(p["images"] for p in parts)
correct = sum(round(p["accuracy"] * p["images"]) for p in parts)
agree = sum(p["agreement"] for p in parts)
secs = sum(p["total_s"] for p in parts)
online = sum(p["latency_s_mean"] * p["images"] for p in parts) / n
traffic = sum(p["bytes_per_image"] * p["images"] for p in parts) / n
mode = parts[0].get("mode", "fast")
print(f"{n} images ({mode} mode): accuracy {correct / n:.2%}, agreement {agree} of {n}, "
      f"total {secs / 3600:.2f} h ({secs / n:.2f} s per image, mean online latency {online:.2f} s), "
      f"{traffic / 1e6:.2f} MB per image")
