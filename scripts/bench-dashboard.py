#!/usr/bin/env python3
"""The dashboard on a phone, measured in a real browser (docs/benchmarks.md).

Starts `vigil run` (the bundled GOOG data, a bar a second) and Debian's Chromium through
chromedriver, speaking WebDriver over HTTP (no client library). The browser is a phone's
width (420 x 900), its CPU slowed 4 times and its network shaped like a mobile link
(150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up), by Chrome's DevTools protocol.

For RUNS loads of each page it records, from the start of the navigation:
- `overview`: until the overview shows the board (`#ready` filled from /ui/api/status);
- `positions`: until the page has its data (the books from the store, the last equity curve
  from the log: two API calls after the page);
each with the browser's cache off (a first visit) and on (a return visit), and the bytes
the page and its assets took over the wire.

    cargo build --release -p vigil
    python3 scripts/bench-dashboard.py [target/release/vigil] [RUNS]
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
VIGIL = sys.argv[1] if len(sys.argv) > 1 else "target/release/vigil"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 20

# Waits in the page until `ready()` is true; answers performance.now() at that moment
# (milliseconds since the navigation started) and the bytes the page took.
WAIT_JS = """
const done = arguments[arguments.length - 1];
const ready = new Function(arguments[0]);
const bytes = () => performance.getEntriesByType("navigation").concat(
  performance.getEntriesByType("resource")).reduce((n, e) => n + (e.transferSize || 0), 0);
const check = () => ready() ? done([performance.now(), bytes()]) : requestAnimationFrame(check);
check();
"""
OVERVIEW = 'const r = document.querySelector("#ready"); return r && r.textContent !== "…";'
POSITIONS = 'return document.querySelector("#books").childElementCount > 0;'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                self.call("GET", "/status")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.profile = tempfile.mkdtemp(prefix="vigil-bench-browser-")
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--window-size=420,900",
                            f"--user-data-dir={self.profile}",
                        ],
                    },
                    "timeouts": {"script": 60000, "pageLoad": 60000},
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=90) as res:
            return json.loads(res.read() or b"{}").get("value")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def cdp(self, cmd, params):
        return self.s("POST", "/goog/cdp/execute", {"cmd": cmd, "params": params})

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def run_async(self, script, *args):
        return self.s("POST", "/execute/async", {"script": script, "args": list(args)})

    def find(self, css):
        found = self.s("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def quit(self):
        try:
            self.s("DELETE", "")
        finally:
            self.proc.kill()
            self.proc.wait()


def start_vigil(home):
    cfg = os.path.join(home, "vigil.toml")
    with open(cfg, "w") as f:
        f.write(
            f"""[data]
instruments = [{{ symbol = "GOOG", path = "bundled:GOOG_1d.csv" }}]
speed = "86400"

[log]
dir = "{home}/logs"

[store]
path = "{home}/state/vigil.db"

[control]
address = "127.0.0.1:0"
"""
        )
    proc = subprocess.Popen(
        [VIGIL, "run", "--config", cfg],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if line.startswith("vigil: control address "):
            base = "http://" + line.split("://", 1)[1].split()[0]
            break
    else:
        raise SystemExit("vigil run ended before it printed its control address")
    with open(os.path.join(home, "state/control.token")) as f:
        return proc, base, f.read().strip()


def measure(d, url, ready, runs, cache):
    d.cdp("Network.setCacheDisabled", {"cacheDisabled": not cache})
    times, sizes = [], []
    for i in range(runs):
        # A page of its own each time (the hash alone would not reload it).
        d.go("about:blank")
        d.go(f"{url.replace('/ui/', f'/ui/?run={i}')}")
        at, size = d.run_async(WAIT_JS, ready)
        times.append(at)
        sizes.append(size)
    return times, sizes


def summary(name, times, sizes):
    times = sorted(times)
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    print(
        f"{name:<22} median {statistics.median(times):7.0f} ms   p90 {p90:7.0f} ms   "
        f"max {times[-1]:7.0f} ms   {statistics.median(sizes) / 1024:6.1f} KiB over the wire"
    )


def main():
    home = tempfile.mkdtemp(prefix="vigil-bench-dashboard-")
    vigil, base, token = start_vigil(home)
    d = Driver()
    try:
        d.cdp("Network.enable", {})
        d.cdp(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 150,
                "downloadThroughput": 1_600_000 / 8,
                "uploadThroughput": 750_000 / 8,
            },
        )
        d.cdp("Emulation.setCPUThrottlingRate", {"rate": 4})
        d.go(f"{base}/ui/login")
        d.s("POST", f"/element/{d.find('#token')}/value", {"text": token})
        d.s("POST", f"/element/{d.find('#login-button')}/click", {})
        d.run_async(WAIT_JS, OVERVIEW)
        print(
            f"vigil {VIGIL}, Chromium at 420 x 900, CPU / 4, 150 ms RTT, 1.6 Mbit/s down; "
            f"{RUNS} loads each"
        )
        for cache in (False, True):
            visit = "return visit" if cache else "first visit"
            for page, ready in (("overview", OVERVIEW), ("positions", POSITIONS)):
                url = f"{base}/ui/#{page}"
                times, sizes = measure(d, url, ready, RUNS, cache)
                summary(f"{page}, {visit}", times, sizes)
    finally:
        d.quit()
        vigil.terminate()
        vigil.wait(timeout=60)


if __name__ == "__main__":
    main()
