#!/usr/bin/env python3
"""Commands that run no model, before and after the libtorch engine moved out of the binary: wall
time and peak RSS of `--version`, `store list` (against a local fake management API), `archive` of
the example model and `predict --remote` of one image (against `scancer serve`), side by side,
round-robin, medians (see BENCHMARKS.md, issue 13).

    python3 bench/startup.py --before OLD/scancer [--after target/release/scancer] [--repeats 15]

Peak RSS is GNU time's %M (/usr/bin/time, from the `time` package): a child's own ru_maxrss would
include the Python interpreter it was forked from.
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
CONFIG = ROOT / "examples" / "pcam-classification.toml"
PATCH = ROOT / "examples" / "patches" / "patch-00.png"


class FakeManagement(http.server.BaseHTTPRequestHandler):
    """GET /models as TorchServe 0.12 answers it."""

    def do_GET(self):
        body = json.dumps({"models": [{"modelName": "pcam-classification",
                                       "modelUrl": "pcam-classification.mar"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def measure(cmd):
    """(seconds, peak RSS in MiB) of one run; exits on failure."""
    with tempfile.NamedTemporaryFile("r") as peak:
        started = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-o", peak.name, "-f", "%M"] + [str(c) for c in cmd],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - started
        if out.returncode != 0:
            sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stderr.decode(errors='replace')}")
        return seconds, int(peak.read().split()[-1]) / 1024


def start_serve(binary):
    proc = subprocess.Popen([str(binary), "serve", "--port", "0", str(MODEL)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on http://127.0.0.1:" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(line.rsplit(":", 1)[1].split("/")[0])
    proc.kill()
    sys.exit("scancer serve did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="the binary before the change")
    ap.add_argument("--after", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()

    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeManagement)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    store_url = f"http://127.0.0.1:{fake.server_address[1]}"
    server, port = start_serve(args.after)
    api_url = f"http://127.0.0.1:{port}"
    out = Path(tempfile.mkdtemp())
    env_clean = {"SCANCER_PROFILE": "", "XDG_CONFIG_HOME": str(out)}
    os.environ.update(env_clean)

    def commands(binary, tag):
        return {
            "--version": [binary, "--version"],
            "store list": [binary, "store", "--url", store_url, "list"],
            "archive (example model)": [binary, "archive", "--model-name", f"pcam-{tag}", "--version", "1.0",
                                        "--serialized-file", MODEL, "--config", CONFIG,
                                        "--export-path", out, "--force"],
            "predict --remote (one image)": [binary, "predict", "-m", "pcam-classification", "--remote", api_url,
                                             "-f", "jsonl", PATCH],
        }

    binaries = {"before": args.before, "after": args.after}
    results = {(task, who): [] for who in binaries for task in commands("", "")}
    try:
        for r in range(args.repeats):
            for task in commands("", ""):
                # Alternate which binary goes first, so that neither always runs on a warmer machine.
                order = list(binaries.items()) if r % 2 == 0 else list(binaries.items())[::-1]
                for who, binary in order:
                    results[(task, who)].append(measure(commands(binary, who)[task]))
    finally:
        server.terminate()
        server.wait()
        fake.shutdown()

    print(f"{args.repeats} runs each, round-robin; medians.\n")
    print("| command | before: s | before: MiB | after: s | after: MiB | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for task in commands("", ""):
        b = results[(task, "before")]
        a = results[(task, "after")]
        bs, bm = statistics.median(x[0] for x in b), statistics.median(x[1] for x in b)
        as_, am = statistics.median(x[0] for x in a), statistics.median(x[1] for x in a)
        print(f"| {task} | {bs:.4f} | {bm:.1f} | {as_:.4f} | {am:.1f} | {bs / as_:.1f}x |")


if __name__ == "__main__":
    main()
