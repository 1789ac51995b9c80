"""A ppdnn client in plain Python, written from docs/PROTOCOL.md and the .proto alone.

It generates its own Paillier key (g = n + 1, classic randomness, no h^n),
fetches the plan, runs the rounds over gRPC and returns the integer logits.
Dependencies: grpcio and grpcio-tools (for the generated code). Big-integer
arithmetic is Python's own; this is an interoperability reference, not a fast client.

    python3 clients/python/ppdnn_client.py --server 127.0.0.1:50051 --bits 1024 --test-images 0 1 2
"""

import argparse
import gzip
import json
import math
import os
import queue
import secrets
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generated_modules():
    """Generates the protobuf and gRPC modules from the .proto into a temp dir."""
    out = tempfile.mkdtemp(prefix="ppdnn-pb-")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(ROOT, "proto"),
         f"--python_out={out}", f"--grpc_python_out={out}", os.path.join(ROOT, "proto/ppdnn/v1/ppdnn.proto")],
        check=True,
    )
    sys.path.insert(0, out)
    from ppdnn.v1 import ppdnn_pb2, ppdnn_pb2_grpc  # noqa: E402
    return ppdnn_pb2, ppdnn_pb2_grpc


# --- Paillier (g = n + 1) -------------------------------------------------

def is_probable_prime(n, rounds=40):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def random_prime(bits):
    while True:
        x = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if is_probable_prime(x):
            return x


class Key:
    def __init__(self, bits):
        while True:
            p, q = random_prime(bits // 2), random_prime(bits // 2)
            n = p * q
            if p != q and n.bit_length() == bits and math.gcd(n, (p - 1) * (q - 1)) == 1:
                break
        self.n, self.n2 = n, n * n
        self.lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
        self.mu = pow((pow(n + 1, self.lam, self.n2) - 1) // n, -1, n)
        self.width = 2 * ((bits + 7) // 8)

    def encrypt(self, m):
        while True:
            r = secrets.randbelow(self.n - 1) + 1
            if math.gcd(r, self.n) == 1:
                break
        return (1 + (m % self.n) * self.n) * pow(r, self.n, self.n2) % self.n2

    def decrypt(self, c):
        if not (0 < c < self.n2) or math.gcd(c, self.n) != 1:
            raise ValueError("invalid ciphertext from the server")
        m = (pow(c, self.lam, self.n2) - 1) // self.n * self.mu % self.n
        return m - self.n if m > (self.n - 1) // 2 else m


# --- Packing (PROTOCOL.md section 4) ---------------------------------------

def encode(values, b):
    m = 0
    for v in reversed(values):
        m = (m << b) + v
    return m


def decode(m, b, s):
    out = []
    for _ in range(s):
        v = m & ((1 << b) - 1)
        if v >= 1 << (b - 1):
            v -= 1 << b
        out.append(v)
        m = (m - v) >> b
    if m != 0:
        raise ValueError("slot overflow")
    return out


def input_plaintexts(layer, packing, x):
    lin, inp, out = layer["linear"], layer["input"], layer["output"]
    if packing == "packed" and lin["kind"] == "conv2d":
        (kh, kw), (sy, sx) = lin["kernel"], lin["stride"]
        top, left = lin["padding"][0], lin["padding"][1]
        ih, iw, ow = inp["height"], inp["width"], out["width"]
        positions, s = out["height"] * ow, layer["slots"]
        chunks = -(-positions // s)
        result = []
        for ic in range(inp["channels"]):
            for ky in range(kh):
                for kx in range(kw):
                    for j in range(chunks):
                        vals = []
                        for p in range(j * s, min(positions, (j + 1) * s)):
                            iy, ix = (p // ow) * sy + ky - top, (p % ow) * sx + kx - left
                            inside = 0 <= iy < ih and 0 <= ix < iw
                            vals.append(x[(ic * ih + iy) * iw + ix] if inside else 0)
                        result.append(encode(vals, layer["slot_bits"]))
        return result
    return list(x)


def shortcut_plaintexts(layer, source):
    """A shortcut's source laid out like the layer's output (PROTOCOL.md
    section 4): per source channel and chunk of S output positions, the
    value under each position at the projection's stride (1: identity)."""
    sc = layer.get("shortcut")
    if sc is None:
        return []
    sy, sx = sc.get("projection") or (1, 1)
    src, out = sc["source"], layer["output"]
    sh, sw, ow = src["height"], src["width"], out["width"]
    conv = layer["linear"]["kind"] == "conv2d"
    positions = out["height"] * ow if conv else layer["linear"]["outputs"]
    s = layer["slots"]
    chunks = -(-positions // s)
    return [encode([source[(c * sh + (p // ow) * sy) * sw + (p % ow) * sx]
                    for p in range(j * s, min(positions, (j + 1) * s))], layer["slot_bits"])
            for c in range(src["channels"]) for j in range(chunks)]


def accumulators(layer, packing, plain):
    lin, out = layer["linear"], layer["output"]
    if packing == "unpacked":
        return plain
    b, s = layer["slot_bits"], layer["slots"]
    conv = lin["kind"] == "conv2d"
    positions = out["height"] * out["width"] if conv else lin["outputs"]
    chunks = -(-positions // s)
    total = positions * (out["channels"] if conv else 1)
    acc = [0] * total
    for i, m in enumerate(plain):
        vals = decode(m, b, s)
        c, j = divmod(i, chunks)
        used = min(s, positions - j * s)
        if any(vals[used:]):
            raise ValueError("unused slot is not zero")
        for t in range(used):
            acc[c * positions + j * s + t] = vals[t]
    return acc


def pooled(pool, out, y):
    """Each window's sum (average pooling) or maximum (max pooling)."""
    (wh, ww), (sy, sx) = pool["window"], pool["stride"]
    ch, h, w = out["channels"], out["height"], out["width"]
    reduce = sum if pool["kind"] == "average" else max
    return [reduce(y[(c * h + oy * sy + dy) * w + ox * sx + dx] for dy in range(wh) for dx in range(ww))
            for c in range(ch) for oy in range((h - wh) // sy + 1) for ox in range((w - ww) // sx + 1)]


def between_layers(layer, acc):
    """ReLU, pooling, requantization (PROTOCOL.md section 5)."""
    r = layer["requant"]
    if r is None:
        return acc
    y = [max(v, 0) for v in acc] if layer["relu"] else list(acc)
    if layer.get("pool"):
        y = pooled(layer["pool"], layer["output"], y)
    mult, shift = r["multiplier"], r["shift"]
    return [min(max((v * mult + (1 << (shift - 1))) >> shift, 0), 255) for v in y]


# --- The service -------------------------------------------------------------

def classify(stub, pb, key, model, image):
    desc = stub.DescribeModel(pb.DescribeModelRequest(model=model, key_bits=key.n.bit_length()))
    plan = json.loads(desc.plan_json)
    packing = plan["packing"]
    requests = queue.Queue()

    def request_iter():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    nbytes = (key.n.bit_length() + 7) // 8
    requests.put(pb.InferRequest(start=pb.Start(
        model=model, key=pb.PublicKey(n=key.n.to_bytes(nbytes, "big")), model_digest=desc.digest)))
    answers = stub.Infer(request_iter())
    x = list(image)
    kept = {}
    for r, layer in enumerate(plan["layers"]):
        added = shortcut_plaintexts(layer, kept.get((layer.get("shortcut") or {}).get("from")))
        cts = [key.encrypt(m) for m in input_plaintexts(layer, packing, x) + added]
        assert len(cts) == layer["input_ciphertexts"]
        data = b"".join(c.to_bytes(key.width, "big") for c in cts)
        requests.put(pb.InferRequest(round=pb.Round(round=r, ciphertexts=data, last=True)))
        got = b""
        while True:
            chunk = next(answers)
            assert chunk.round == r
            got += chunk.ciphertexts
            if chunk.last:
                break
        w = key.width
        plain = [key.decrypt(int.from_bytes(got[i:i + w], "big")) for i in range(0, len(got), w)]
        assert len(plain) == layer["output_ciphertexts"]
        acc = accumulators(layer, packing, plain)
        assert all(abs(a) <= layer["accumulator_bound"] for a in acc)
        x = between_layers(layer, acc)
        kept[layer["name"]] = x
    requests.put(None)
    return x


def test_images(indices):
    path = os.environ.get("PPDNN_DATA", os.path.join(ROOT, "data/mnist"))
    with gzip.open(os.path.join(path, "t10k-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    return [raw[16 + 784 * i:16 + 784 * (i + 1)] for i in indices]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, help="host:port")
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--model", default="")
    ap.add_argument("--test-images", type=int, nargs="+", required=True, help="MNIST test indices")
    args = ap.parse_args()
    pb, pb_grpc = generated_modules()
    stub = pb_grpc.InferenceStub(grpc.insecure_channel(args.server))
    key = Key(args.bits)
    out = [{"index": i, "logits": classify(stub, pb, key, args.model, img)}
           for i, img in zip(args.test_images, test_images(args.test_images))]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
