"""Interoperability: the Python client (written from the docs) against the Rust
server gets exactly the logits of the Rust plaintext integer model."""

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PPDNN = os.path.join(ROOT, "target/release/ppdnn")


def check(model, name, indices):
    """Serves `model` (None: the default) in the fast mode and classifies MNIST
    test images `indices` with the Python client; returns (passed, failed)
    against `ppdnn predict` on the same images."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ["--model", model] if model else []
    server = subprocess.Popen([PPDNN, "serve", "--listen", f"127.0.0.1:{port}", "--key-bits", "1024",
                               "--insecure-small-keys", "--modes", "fast", *extra], cwd=ROOT, stderr=subprocess.DEVNULL)
    passed = failed = 0
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        out = subprocess.run([sys.executable, os.path.join(ROOT, "clients/python/ppdnn_client.py"),
                              "--server", f"127.0.0.1:{port}", "--bits", "1024", "--model", name,
                              "--test-images", *map(str, indices)],
                             check=True, capture_output=True, text=True)
        remote = json.loads(out.stdout)
        pngs = sorted(os.listdir(os.path.join(ROOT, "examples/digits")))[:len(indices)]
        plain = json.loads(subprocess.run([PPDNN, "predict", "--json", *extra, *[f"examples/digits/{p}" for p in pngs]],
                                          cwd=ROOT, check=True, capture_output=True, text=True).stdout)
        for r, p in zip(remote, plain):
            if r["logits"] == p["logits"]:
                passed += 1
            else:
                failed += 1
                print(f"{name or 'default'} image {r['index']}: python client {r['logits']} != predict {p['logits']}")
    finally:
        server.terminate()
        server.wait()
    return passed, failed


def main():
    # The shipped LeNet-5, then the shipped residual network (its shortcuts'
    # inputs laid out by the client as PROTOCOL.md section 4 says).
    results = [check(None, "", [0, 1, 2]), check("models/resnet-mnist.safetensors", "resnet-mnist", [0])]
    passed, failed = sum(p for p, _ in results), sum(f for _, f in results)
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed or any(p == 0 for p, _ in results) else 0)


if __name__ == "__main__":
    main()
