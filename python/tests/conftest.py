"""Fixtures: the `ppdnn` binary, a server it runs, and a shared test key.

The binary is target/release/ppdnn of this repository unless PPDNN_BIN names
another. Servers accept 1024-bit keys (tests only) so the suite runs fast.
"""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

import ppdnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "examples", "digits")


def ppdnn_bin():
    path = os.environ.get("PPDNN_BIN") or os.path.join(ROOT, "target", "release", "ppdnn")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: build it with `cargo build --release` (or set PPDNN_BIN)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, process=None, timeout=60):
    deadline = time.time() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process listening on {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


class Server:
    """A `ppdnn serve` process on a free loopback port, its log in a file."""

    def __init__(self, log_path, *extra):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [ppdnn_bin(), "serve", "--listen", f"127.0.0.1:{self.port}", "--key-bits", "1024",
             "--insecure-small-keys", *extra],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process)

    def kill(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def completed_inferences(self):
        """How many inferences the server's log says it answered."""
        with open(self.log_path, "rb") as f:
            return sum(1 for line in f if b"bytes_out" in line)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server") / "serve.log", "--modes", "private,fast")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def key():
    return ppdnn.Key.generate(1024, insecure=True)


@pytest.fixture(scope="session")
def digits():
    return sorted(os.path.join(DIGITS, f) for f in os.listdir(DIGITS) if f.endswith(".png"))


@pytest.fixture(scope="session")
def predicted(digits):
    """`ppdnn predict --json` on the example digits: the plaintext integer model's logits."""
    out = subprocess.run([ppdnn_bin(), "predict", "--json", *digits], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return {p["file"]: p for p in json.loads(out)}
