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


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([PPDNN, "serve", "--listen", f"127.0.0.1:{port}", "--key-bits", "1024",
                               "--insecure-small-keys", "--modes", "fast"], cwd=ROOT, stderr=subprocess.DEVNULL)
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
        indices = [0, 1, 2]
        out = subprocess.run([sys.executable, os.path.join(ROOT, "clients/python/ppdnn_client.py"),
                              "--server", f"127.0.0.1:{port}", "--bits", "1024", "--test-images", *map(str, indices)],
                             check=True, capture_output=True, text=True)
        remote = json.loads(out.stdout)
        pngs = sorted(os.listdir(os.path.join(ROOT, "examples/digits")))[:len(indices)]
        plain = json.loads(subprocess.run([PPDNN, "predict", "--json", *[f"examples/digits/{p}" for p in pngs]],
                                          cwd=ROOT, check=True, capture_output=True, text=True).stdout)
        for r, p in zip(remote, plain):
            if r["logits"] == p["logits"]:
                passed += 1
            else:
                failed += 1
                print(f"image {r['index']}: python client {r['logits']} != predict {p['logits']}")
    finally:
        server.terminate()
        server.wait()
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
