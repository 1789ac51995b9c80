#!/usr/bin/env python3
"""End to end in a real browser: the page that `ppdnn serve --web` serves,
driven in headless Chromium through chromedriver (the W3C WebDriver
protocol, spoken here with the standard library: no mock DOM, no extra
package).

It starts the server with the page built in, loads the page, makes a key in
the browser, sets an example digit through the file input, classifies it in
each mode the server offers and checks that the label and the logits the
page shows equal `ppdnn predict --json` for that image. Then it checks that
a page on another origin is refused by a server without --cors-origin and
served by one with it (that host does not isolate the page, so this
classification runs the single-threaded client, and must agree too), and
that a server without --web serves no page. With --nginx, the page works
through two replicas behind deploy/nginx/ppdnn.conf, and fails (as it
must) when that file's browsers are balanced per request.
It prints the figures (ready time, key generation, time per mode, bundle
size) as JSON and saves a screenshot.

Usage: scripts/browser_test.py [--ppdnn target/release/ppdnn]
       [--screenshot results/web/page.png] [--json results/web/browser.json]
"""

import argparse
import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGIT = os.path.join(ROOT, "examples", "digits", "0000-7.png")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not open port {port} in {timeout} s")


class WebDriver:
    """The few W3C WebDriver commands this test needs."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--window-size=1100,900",
                        ],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return json.loads(r.read())["value"]
        except urllib.error.HTTPError as e:
            raise SystemExit(f"webdriver {method} {path}: {e.read().decode(errors='replace')}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def element(self, css):
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def click(self, css):
        self.s("POST", f"/element/{self.element(css)}/click", {})

    def send_file(self, css, path):
        self.s("POST", f"/element/{self.element(css)}/value", {"text": path})

    def wait(self, script, what, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(script)
            if value:
                return value
            time.sleep(0.05)
        error = self.js("return document.getElementById('error').textContent")
        raise SystemExit(f"timed out waiting for {what} (page error: {error!r})")

    def screenshot(self, path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))

    def quit(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        except SystemExit:
            pass


def serve(ppdnn, port, extra):
    log = open(os.path.join(ROOT, "target", f"browser-serve-{port}.log"), "w")
    p = subprocess.Popen([ppdnn, "serve", "--listen", f"127.0.0.1:{port}", "--modes", "fast,private", *extra],
                         cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, "ppdnn serve")
    return p


def static_server(directory):
    """The page on another origin: a plain static server."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=directory)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def expected(ppdnn):
    out = subprocess.run([ppdnn, "predict", DIGIT, "--json"], cwd=ROOT, check=True, capture_output=True, text=True)
    item = json.loads(out.stdout)[0]
    return item["label"], item["logits"]



def bundle_sizes(dist):
    """What a page loads: the page's own files and one of the two builds."""
    def size(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    page = sum(os.path.getsize(os.path.join(dist, f)) for f in os.listdir(dist)
               if os.path.isfile(os.path.join(dist, f)))
    out = {"bundle_wasm_bytes": os.path.getsize(os.path.join(dist, "pkg", "ppdnn_web_bg.wasm")),
           "bundle_bytes": page + size(os.path.join(dist, "pkg"))}
    threaded = os.path.join(dist, "pkg-threads")
    if os.path.isdir(threaded):
        out["bundle_threaded_wasm_bytes"] = os.path.getsize(os.path.join(threaded, "ppdnn_web_bg.wasm"))
        out["bundle_threaded_bytes"] = page + size(threaded)
    return out


def keygen(driver):
    driver.click("#keygen")
    driver.wait("return document.body.dataset.key === '2048'", "the key", 120)


def set_digit(driver):
    driver.send_file("#file", DIGIT)
    driver.wait("return document.body.dataset.input === '0000-7.png'", "the digit to load", 30)


def classify(driver, mode, done_before, label, logits):
    """Classifies the digit in `mode`; checks the page's answer against
    ppdnn predict's; returns the figures the page shows."""
    driver.js("const s = document.getElementById('mode'); if (s.value !== arguments[0]) {"
              "s.value = arguments[0]; s.dispatchEvent(new Event('change')); }", mode)
    driver.wait(f"return document.body.dataset.prepared === '{mode}'", f"the {mode} preparation", 120)
    prepare_ms = int(driver.js("return document.body.dataset.prepareMs"))
    driver.click("#classify")
    driver.wait(f"return Number(document.body.dataset.done || 0) >= {done_before + 1}", f"the {mode} answer", 120)
    shown = json.loads(driver.js("return document.getElementById('logits').textContent"))
    page_label = int(driver.js("return document.getElementById('label').textContent"))
    if shown["mode"] != mode or shown["logits"] != logits or page_label != label or shown["label"] != label:
        raise SystemExit(f"{mode}: the page shows label {page_label} logits {shown['logits']}; "
                         f"ppdnn predict gives {label} {logits}")
    out = {k: shown[k] for k in ("total_ms", "client_ms", "server_and_network_ms", "bytes_sent", "bytes_received")}
    out["prepare_ms"] = prepare_ms
    out["threads"] = int(driver.js("return document.body.dataset.threads"))
    print(f"{mode}: label {page_label}, logits equal to ppdnn predict's: {json.dumps(out)}", file=sys.stderr)
    return out



def nginx_conf(tmp, lb_port, browser_port, replicas, per_request):
    """deploy/nginx/ppdnn.conf on these ports; per_request drops the
    browsers' upstream's address hash (the control)."""
    with open(os.path.join(ROOT, "deploy", "nginx", "ppdnn.conf")) as f:
        conf = f.read()
    if per_request:
        if "hash $remote_addr consistent;" not in conf:
            raise SystemExit("deploy/nginx/ppdnn.conf no longer hashes browsers by address")
        conf = conf.replace("hash $remote_addr consistent;", "")
    conf = (conf.replace("127.0.0.1:50051", f"127.0.0.1:{lb_port}")
                .replace("127.0.0.1:50052", f"127.0.0.1:{browser_port}")
                .replace("127.0.0.1:50061", f"127.0.0.1:{replicas[0]}")
                .replace("127.0.0.1:50062", f"127.0.0.1:{replicas[1]}")
                .replace("worker_processes auto;", "worker_processes 1;"))
    os.makedirs(os.path.join(tmp, "tmp"), exist_ok=True)
    path = os.path.join(tmp, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def through_nginx(driver, ppdnn, procs, label, logits):
    """Two replicas behind deploy/nginx/ppdnn.conf: the page, loaded through
    nginx, classifies exactly; with the browsers' upstream balanced per
    request (the control), the session's next call meets the other replica
    and the page shows the refusal."""
    import shutil
    import tempfile
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    replicas = [free_port(), free_port()]
    for port in replicas:
        procs.append(serve(ppdnn, port, ["--web"]))
    out = {}
    for per_request in (False, True):
        tmp = tempfile.mkdtemp()
        lb_port, browser_port = free_port(), free_port()
        conf = nginx_conf(tmp, lb_port, browser_port, replicas, per_request)
        lb = subprocess.Popen([nginx, "-p", tmp, "-c", conf, "-g", "daemon off;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(lb)
        wait_port(browser_port, "nginx")
        driver.go(f"http://127.0.0.1:{browser_port}/")
        driver.wait("return document.body.dataset.ready === '1'", "the page through nginx", 30)
        keygen(driver)
        set_digit(driver)
        if not per_request:
            out["fast_through_nginx"] = classify(driver, "fast", 0, label, logits)
        else:
            driver.js("const s = document.getElementById('mode'); if (s.value !== 'fast') {"
                      "s.value = 'fast'; s.dispatchEvent(new Event('change')); }")
            driver.wait("return document.body.dataset.prepared === 'fast'", "the fast preparation", 120)
            driver.click("#classify")
            driver.wait("return !document.getElementById('error').hidden", "the control's failure", 120)
            error = driver.js("return document.getElementById('error').textContent")
            if "session" not in error.lower():
                raise SystemExit(f"control: per-request balancing failed otherwise than expected: {error}")
            print(f"control (nginx balancing per request): the page shows: {error}", file=sys.stderr)
            out["nginx_control"] = "refused as expected"
        lb.terminate()
        lb.wait(timeout=10)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ppdnn", default=os.path.join(ROOT, "target", "release", "ppdnn"))
    ap.add_argument("--screenshot", default=os.path.join(ROOT, "results", "web", "page.png"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--nginx", action="store_true",
                    help="also through two replicas behind deploy/nginx/ppdnn.conf (and its control)")
    ap.add_argument("--require-threads", action="store_true",
                    help="fail unless the threaded client is built and used")
    args = ap.parse_args()
    dist = os.path.join(ROOT, "web", "dist")
    wasm = os.path.join(dist, "pkg", "ppdnn_web_bg.wasm")
    if not os.path.exists(wasm):
        raise SystemExit("web/dist is missing: run scripts/build-web.sh first")
    label, logits = expected(args.ppdnn)
    port, other_port, driver_port = free_port(), free_port(), free_port()
    procs = []
    driver = None
    try:
        procs.append(serve(args.ppdnn, port, ["--web"]))
        procs.append(subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(driver_port, "chromedriver")
        driver = WebDriver(driver_port)
        report = bundle_sizes(dist)
        threaded_built = os.path.exists(os.path.join(dist, "pkg-threads", "ppdnn_web_bg.wasm"))
        if args.require_threads and not threaded_built:
            raise SystemExit("--require-threads: web/dist/pkg-threads is missing (PPDNN_WEB_THREADS=yes scripts/build-web.sh)")

        t0 = time.time()
        driver.go(f"http://127.0.0.1:{port}/")
        driver.wait("return document.body.dataset.ready === '1'", "the page to be ready", 30)
        report["ready_s"] = round(time.time() - t0, 3)
        report["ready_in_page_ms"] = int(driver.js("return document.body.dataset.readyMs"))
        threads = int(driver.js("return document.body.dataset.threads"))
        cores = int(driver.js("return navigator.hardwareConcurrency || 1"))
        report["threads"] = threads
        print(f"the page served by ppdnn serve --web: client on {threads} worker thread(s), {cores} cores",
              file=sys.stderr)
        if threaded_built and cores > 1 and threads < 2:
            raise SystemExit(f"the page is served cross-origin isolated with a threaded build, yet its client "
                             f"runs on {threads} thread(s)")

        keygen(driver)
        report["keygen_s"] = int(driver.js("return document.body.dataset.keygenMs")) / 1000
        set_digit(driver)
        modes = driver.js("return Array.from(document.getElementById('mode').options).map(o => o.value)")
        if sorted(modes) != ["fast", "private"]:
            raise SystemExit(f"the page offers modes {modes}, the server fast and private")
        for i, mode in enumerate(["fast", "private"]):
            report[mode] = classify(driver, mode, i, label, logits)
        driver.screenshot(args.screenshot)

        # A page on another origin: refused without --cors-origin, served with it.
        other = static_server(dist)
        page = f"http://127.0.0.1:{other.server_port}/?server=http://127.0.0.1:{port}"
        driver.go(page)
        driver.wait("return !document.getElementById('error').hidden", "the refusal", 30)
        if driver.js("return document.body.dataset.ready") == "1":
            raise SystemExit("a page on another origin reached a server without --cors-origin")
        origin = f"http://127.0.0.1:{other.server_port}"
        procs.append(serve(args.ppdnn, other_port, ["--cors-origin", origin]))
        driver.go(f"{origin}/?server=http://127.0.0.1:{other_port}")
        driver.wait("return document.body.dataset.ready === '1'", "the page on another origin", 30)
        # That host sends no isolation headers: the single-threaded client,
        # which must give the same answer.
        single = int(driver.js("return document.body.dataset.threads"))
        if single != 1:
            raise SystemExit(f"a page that is not cross-origin isolated runs its client on {single} threads")
        keygen(driver)
        set_digit(driver)
        report["fast_one_worker"] = classify(driver, "fast", 0, label, logits)
        other.shutdown()

        # Without --web there is no page (gRPC's "unimplemented", or an HTTP error).
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{other_port}/", timeout=10) as r:
                body = r.read()
                if b"<html" in body.lower() or r.headers.get("content-type", "").startswith("text/html"):
                    raise SystemExit("a server without --web served a page at /")
        except urllib.error.HTTPError:
            pass
        report["cors_and_no_page_checks"] = "passed"
        if args.nginx:
            report.update(through_nginx(driver, args.ppdnn, procs, label, logits))
        print(json.dumps(report))
        if args.json:
            os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        if driver:
            driver.quit()
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
