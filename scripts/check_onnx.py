#!/usr/bin/env python3
"""Checks ppdnn's ONNX import and export against onnxruntime, live.

For every fixture of crates/onnx/tests/data (residual networks among
them): `ppdnn import` it (calibrated on the fixture's inputs), run `ppdnn
predict --float` on those inputs, and compare with onnxruntime's outputs on
the same inputs, to 1e-4; then `ppdnn export-onnx` the imported model and
compare onnxruntime's outputs on the exported file with the same logits.
The fixtures marked "refused" must be refused, naming the node. Then the
shipped LeNet-5 through `ppdnn export-onnx`: onnxruntime on the exported
file agrees with `ppdnn predict --float` on the first MNIST test images.

    python3 scripts/check_onnx.py [--ppdnn target/release/ppdnn]

Needs numpy and onnxruntime (pip install numpy onnxruntime).
"""
import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TOLERANCE = 1e-4


def run(ppdnn, *args):
    out = subprocess.run([ppdnn, *args], cwd=ROOT, capture_output=True, text=True)
    return out.returncode, out.stdout, out.stderr


def onnxruntime_outputs(path, x):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: x})[0]


def softmax(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def close(got, want):
    return np.all(np.abs(got - want) <= TOLERANCE * np.maximum(np.abs(want), 1.0))


def check_export(ppdnn, model, pixels, logits, name):
    """`ppdnn export-onnx` of an imported model: onnxruntime on the exported
    file (which takes pixel / 255) gives ppdnn's float logits."""
    exported = model[:-len(".safetensors")] + ".exported.onnx"
    code, _, err = run(ppdnn, "export-onnx", model, "--out", exported)
    if code != 0:
        return [f"{name}: export-onnx failed: {err}"]
    want = onnxruntime_outputs(exported, pixels.astype(np.float32) / 255).astype(np.float64)
    if not close(logits, want.reshape(logits.shape)):
        return [f"{name} exported: ppdnn {logits.tolist()} vs onnxruntime {want.tolist()}"]
    return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ppdnn", default=os.path.join(ROOT, "target", "release", "ppdnn"))
    args = parser.parse_args()
    failures, checked = [], 0
    tmp = tempfile.mkdtemp()
    for path in sorted(glob.glob(os.path.join(ROOT, "crates", "onnx", "tests", "data", "*.onnx"))):
        name = os.path.basename(path)[:-5]
        meta = json.load(open(path[:-5] + ".json"))
        shape = meta["input_shape"]
        pixels = np.array(meta["pixels"], dtype=np.uint8).reshape([-1] + shape)
        npy = os.path.join(tmp, name + ".npy")
        np.save(npy, pixels)
        out = os.path.join(tmp, name + ".safetensors")
        import_args = ["import", path, "--calibration", npy, "--out", out, "--force"]
        if meta.get("byte"):
            import_args += ["--input-scale", "byte"]
        if "mean" in meta:
            import_args += ["--input-mean", ",".join(map(str, meta["mean"])), "--input-std", ",".join(map(str, meta["std"]))]
        code, _, err = run(args.ppdnn, *import_args)
        if "refused" in meta:
            if code == 0 or meta["refused"] not in err:
                failures.append(f"{name}: should be refused naming {meta['refused']!r}, got {code}: {err}")
            checked += 1
            continue
        if code != 0:
            failures.append(f"{name}: import failed: {err}")
            continue
        code, stdout, err = run(args.ppdnn, "predict", "--model", out, "--float", "--json", npy)
        if code != 0:
            failures.append(f"{name}: predict failed: {err}")
            continue
        logits = np.array([p["float_logits"] for p in json.loads(stdout)], dtype=np.float64)
        ours = softmax(logits) if meta.get("softmax") else logits
        x = pixels.astype(np.float32) if meta.get("byte") else pixels.astype(np.float32) / 255
        if "mean" in meta:
            x = ((x - np.float32(meta["mean"][0])) / np.float32(meta["std"][0])).astype(np.float32)
        want = onnxruntime_outputs(path, x).astype(np.float64)
        if not close(ours, want):
            failures.append(f"{name}: ppdnn {ours.tolist()} vs onnxruntime {want.tolist()}")
        checked += 1
        failures += check_export(args.ppdnn, out, pixels, logits, name)
        checked += 1
    # Export: the shipped model as ONNX, run by onnxruntime on the first
    # 20 MNIST test images, against `ppdnn predict --float` on the same pixels.
    exported = os.path.join(tmp, "lenet5.onnx")
    code, _, err = run(args.ppdnn, "export-onnx", "models/lenet5-mnist.safetensors", "--out", exported)
    if code != 0:
        failures.append(f"export-onnx failed: {err}")
    else:
        with gzip.open(os.path.join(ROOT, "data", "mnist", "t10k-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:20]
        npy = os.path.join(tmp, "mnist20.npy")
        np.save(npy, images)
        code, stdout, err = run(args.ppdnn, "predict", "--float", "--json", npy)
        if code != 0:
            failures.append(f"predict --float failed: {err}")
        else:
            ours = np.array([p["float_logits"] for p in json.loads(stdout)], dtype=np.float64)
            want = onnxruntime_outputs(exported, images.astype(np.float32) / 255).astype(np.float64)
            if not close(ours, want):
                failures.append(f"exported LeNet-5: ppdnn {ours[0].tolist()} vs onnxruntime {want[0].tolist()}")
        checked += 1
    for f in failures:
        print("FAIL", f)
    print(f"onnx: {checked - len(failures)} of {checked} checks agree with onnxruntime")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
