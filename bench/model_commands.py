#!/usr/bin/env python3
"""Model commands before and after the libtorch engine moved out of the binary (issue 13): one-image
`predict`, a directory scan and `serve` throughput, side by side, round-robin (alternating which goes first), medians. The engine
is opened on first use instead of at start-up; this checks that nothing else changed.

    python3 bench/model_commands.py --before OLD/scancer [--after target/release/scancer]
        [--repeats 7] [--patches 2000] [--hey hey]

The directory is copies of the bundled example patches (real 96x96 H&E PNGs); serve is driven by
`hey` (Debian's `hey` package) with 8 keep-alive clients posting one patch for 5 s per round.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
PATCH = ROOT / "examples" / "patches" / "patch-00.png"


def timed(cmd):
    started = time.perf_counter()
    out = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stderr.decode(errors='replace')}")
    return time.perf_counter() - started


def serve_rate(binary, hey, seconds, clients=8, env=None):
    """Answers/s of `binary serve` under `hey` with `clients` keep-alive clients; every answer 200.
    (bench/cpu_policy.py uses it too.)"""
    proc = subprocess.Popen([str(binary), "serve", "--port", "0", str(MODEL)], stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        port, deadline = None, time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        if port is None:
            sys.exit(f"{binary} serve did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        out = subprocess.run([hey, "-z", f"{seconds}s", "-c", str(clients), "-m", "POST", "-D", str(PATCH),
                              f"http://127.0.0.1:{port}/predictions/pcam-classification"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        codes = re.findall(r"^\s+\[(\d{3})\]\s+\d+ responses", out, re.M)
        if codes != ["200"]:
            sys.exit(f"serve answered other than 200:\n{out}")
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--patches", type=int, default=2000)
    ap.add_argument("--hey", default=shutil.which("hey") or "hey")
    ap.add_argument("--serve-seconds", type=int, default=5)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp())
    examples = sorted((ROOT / "examples" / "patches").glob("*.png"))
    for k in range(args.patches):
        shutil.copy(examples[k % len(examples)], scratch / f"patch-{k:05}.png")
    binaries = {"before": args.before, "after": args.after}
    tasks = {
        "predict, one image (s)": lambda b: timed([b, "predict", "-m", MODEL, "-f", "jsonl", "-q", PATCH]),
        f"predict, {args.patches} patches (images/s)":
            lambda b: args.patches / timed([b, "predict", "-m", MODEL, "-f", "jsonl", "-q", scratch]),
        "serve, 8 clients (answers/s)": lambda b: serve_rate(b, args.hey, args.serve_seconds),
    }
    results = {(t, w): [] for t in tasks for w in binaries}
    for r in range(args.repeats):
        for task, run in tasks.items():
            # Alternate which binary goes first, so that neither always runs on a warmer machine.
            order = list(binaries.items()) if r % 2 == 0 else list(binaries.items())[::-1]
            for who, binary in order:
                results[(task, who)].append(run(binary))
    shutil.rmtree(scratch)
    print(f"{args.repeats} runs each, round-robin; medians (min-max).\n")
    print("| measure | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for task in tasks:
        b, a = results[(task, "before")], results[(task, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"| {task} | {mb:.4g} ({min(b):.4g}-{max(b):.4g}) | {ma:.4g} ({min(a):.4g}-{max(a):.4g}) | {ma / mb:.3f} |")


if __name__ == "__main__":
    main()
