"""Two `ppdnn serve` replicas behind nginx (deploy/nginx/ppdnn.conf, with
loopback ports of this test): 16 concurrent clients through the balancer get
exact answers, both replicas serve, and when one replica is killed mid-run the
streams it held fail with UNAVAILABLE and are retried on the other."""

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

import ppdnn
from conftest import ROOT, Server, free_port, wait_for_port

CLIENTS = 16
IMAGES_PER_CLIENT = 4


@pytest.fixture
def balanced(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx); the replica test needs it")
    # Replicas share the factor-proof parameters: a client reads them from
    # one replica and may start its inference on the other.
    params = str(tmp_path / "factor-params.bin")
    replicas = [Server(tmp_path / f"replica{i}.log", "--modes", "private,fast", "--max-sessions", "32",
                       "--factor-params", params)
                for i in (1, 2)]
    port = free_port()
    with open(os.path.join(ROOT, "deploy", "nginx", "ppdnn.conf")) as f:
        conf = f.read()
    conf = (conf.replace("127.0.0.1:50051", f"127.0.0.1:{port}")
                .replace("127.0.0.1:50052", f"127.0.0.1:{free_port()}")
                .replace("127.0.0.1:50061", f"127.0.0.1:{replicas[0].port}")
                .replace("127.0.0.1:50062", f"127.0.0.1:{replicas[1].port}")
                .replace("worker_processes auto;", "worker_processes 1;"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "nginx.conf").write_text(conf)
    log = open(tmp_path / "nginx.log", "wb")
    lb = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, lb)
        yield f"http://127.0.0.1:{port}", replicas
    finally:
        lb.terminate()
        lb.wait()
        log.close()
        for r in replicas:
            r.stop()


def test_sixteen_clients_through_nginx_and_a_replica_killed_mid_run(balanced, key, digits, predicted):
    url, replicas = balanced
    images = [ppdnn.load_png(p) for p in digits]
    expected = [predicted[p]["logits"] for p in digits]
    # Half the clients in each mode: the private mode's garbled circuits
    # (megabytes per image) stream through the balancer too.
    clients = [ppdnn.Client(url, key=key, mode=("private", "fast")[i % 2]) for i in range(CLIENTS)]
    for c in clients:
        c.describe()  # plans fetched before the clock starts
    results, errors, retried = {}, [], []
    lock = threading.Lock()
    halfway = threading.Event()

    def run(i):
        for k in range(IMAGES_PER_CLIENT):
            n = (i * IMAGES_PER_CLIENT + k) % len(images)
            try:
                r = clients[i].classify(images[n])
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(f"client {i} image {n}: {e!r}")
                continue
            with lock:
                results[(i, k)] = (n, r)
                retried.extend(r.retries)
                if len(results) >= CLIENTS * IMAGES_PER_CLIENT // 3:
                    halfway.set()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    assert halfway.wait(300), "no progress through the balancer"
    served_before_kill = [r.completed_inferences() for r in replicas]
    replicas[0].kill()  # mid-run: it holds streams of some clients
    for t in threads:
        t.join(600)
    assert not errors, errors
    assert len(results) == CLIENTS * IMAGES_PER_CLIENT
    for (i, _), (n, r) in results.items():
        assert r.logits.tolist() == expected[n]
        assert r.mode == ("private", "fast")[i % 2]
    assert all(s > 0 for s in served_before_kill), f"both replicas serve: {served_before_kill}"
    assert replicas[1].completed_inferences() > served_before_kill[1]
    # The killed replica held streams; their clients saw UNAVAILABLE and retried.
    assert retried, "no client had to retry: the kill did not interrupt any stream"
    assert all("(Unavailable)" in why for why in retried), retried
    print(f"\nserved before the kill: {served_before_kill}; retried: {len(retried)}: {retried[:2]}")
