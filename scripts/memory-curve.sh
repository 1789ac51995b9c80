#!/bin/bash
# The server's memory curve on the VGG-style network (random weights, pow2
# requantization, 2048-bit keys): idle, then `classify --mode private` of 3
# random 3x32x32 images, then `classify --mode fast` of 10 (a second fresh
# key), then idle. Prints "seconds resident-MiB" every 0.25 s on stdout;
# the server's log goes to $WORK/serve.log, the clients' JSON and
# /usr/bin/time reports to $WORK/classify-*.
#
#   cargo build --release && scripts/memory-curve.sh > curve.txt
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/ppdnn
WORK=${WORK:-$(mktemp -d)}
PORT=${PORT:-50099}
echo "# work files in $WORK" >&2

$BIN bench network --arch vgg-cifar --mode fast --requant pow2 --images 1 \
    --save "$WORK/vgg-pow2.safetensors" > /dev/null
python3 - "$WORK" <<'EOF'
import random, struct, sys
def save(path, shape, seed):
    rng = random.Random(seed)
    n = 1
    for s in shape:
        n *= s
    hdr = "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }" % ", ".join(map(str, shape))
    hdr += " " * ((64 - (11 + len(hdr)) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(bytes(rng.randrange(256) for _ in range(n)))
save(f"{sys.argv[1]}/private.npy", (3, 3, 32, 32), 1)
save(f"{sys.argv[1]}/fast.npy", (10, 3, 32, 32), 2)
EOF

$BIN serve --model "$WORK/vgg-pow2.safetensors" --listen "127.0.0.1:$PORT" \
    --modes fast,private > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
sleep 2
START=$(date +%s.%N)
(
    while kill -0 $SERVER 2>/dev/null; do
        RSS=$(awk '/VmRSS/ { print int($2 / 1024) }' /proc/$SERVER/status 2>/dev/null || true)
        [ -n "$RSS" ] && echo "$(echo "$(date +%s.%N) - $START" | bc | xargs printf '%.3f') $RSS"
        sleep 0.25
    done
) &
SAMPLER=$!
sleep 2
for MODE in private fast; do
    timeout 600 /usr/bin/time -v $BIN classify --server "http://127.0.0.1:$PORT" --mode $MODE --json \
        "$WORK/$MODE.npy" > "$WORK/classify-$MODE.json" 2> "$WORK/classify-$MODE.time"
done
sleep 4
kill $SERVER
wait $SAMPLER 2>/dev/null || true
