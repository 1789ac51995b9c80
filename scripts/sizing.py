#!/usr/bin/env python3
"""Sizing figures for docs/DEPLOY.md: what one `ppdnn serve` process costs per
image and per session, measured from outside it.

Starts `ppdnn serve` (2048-bit keys, both modes), then for each mode runs
CLIENTS concurrent SDK clients (each with its own key) classifying IMAGES
digits each, and reports from /proc the server's CPU seconds per image (so
images per second per fully used core), its resident memory idle and at the
peak, and the peak's growth per concurrent session. The clients run in this
process, on the same machine: the wall-clock rate is the whole machine's, the
CPU figures are the server's alone.

    pip install ./python && python3 scripts/sizing.py [--clients 4] [--images 5] [--json]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

import ppdnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_mode(url, pid, keys, mode, images, digits):
    clients = [ppdnn.Client(url, key=k, mode=mode) for k in keys]
    for c in clients:
        c.describe()
    work = [[digits[(i * images + j) % len(digits)] for j in range(images)] for i in range(len(clients))]
    # One untimed image per client: plans, circuits and key tables are built.
    for c in clients:
        c.classify(digits[0])
    time.sleep(1)
    idle = rss_mib(pid)
    peak = [idle]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    cpu0, t0 = cpu_seconds(pid), time.time()
    results = [None] * len(clients)
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, clients[i].classify_many(work[i])))
               for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.time() - t0, cpu_seconds(pid) - cpu0
    done.set()
    sampler.join()
    n = len(clients) * images
    if any(r is None or len(r) != images for r in results):
        sys.exit(f"{mode}: some client did not finish")
    return {
        "mode": mode,
        "clients": len(clients),
        "images": n,
        "server_cpu_s_per_image": round(cpu / n, 3),
        "images_per_s_per_core": round(n / cpu, 2),
        "wall_images_per_s": round(n / wall, 2),
        "server_rss_mib_idle": round(idle, 1),
        "server_rss_mib_peak": round(peak[0], 1),
        "mib_per_session": round((peak[0] - idle) / len(clients), 1),
    }


def with_server(args, run):
    binary = os.environ.get("PPDNN_BIN") or os.path.join(ROOT, "target", "release", "ppdnn")
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--modes", "private,fast",
                               "--key-bits", str(args.bits), "--max-sessions", str(max(16, args.clients))],
                              cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        return run(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--bits", type=int, default=2048)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    digits_dir = os.path.join(ROOT, "examples", "digits")
    digits = sorted(os.path.join(digits_dir, f) for f in os.listdir(digits_dir) if f.endswith(".png"))
    keys = [ppdnn.Key.generate(args.bits) for _ in range(args.clients)]
    # A fresh server per mode, so that its idle memory is idle.
    rows = [with_server(args, lambda url, pid, mode=mode: run_mode(url, pid, keys, mode, args.images, digits))
            for mode in ("private", "fast")]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(f"{r['mode']:>8}: {r['server_cpu_s_per_image']} server CPU s/image = "
                  f"{r['images_per_s_per_core']} images/s per core; {r['wall_images_per_s']} images/s on this "
                  f"machine with the clients; server RSS {r['server_rss_mib_idle']} MiB idle, "
                  f"{r['server_rss_mib_peak']} MiB with {r['clients']} sessions "
                  f"(~{r['mib_per_session']} MiB per session)")


if __name__ == "__main__":
    main()
