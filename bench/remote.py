#!/usr/bin/env python3
"""Is `scancer predict --remote` the bottleneck? (see BENCHMARKS.md)

Serves the full-width pcam model (bench/data, made by `cargo xtask bench`) with `scancer serve`, then,
round-robin, `--repeats` times: `hey` with 8 clients PUTting one patch for `--seconds`, and `scancer
predict --remote --jobs 8` over the 2,000 patches of bench/data/patches (process start to exit,
JSON Lines to a pipe). Reports the median requests/s of each and their ratio (target: at least 0.9).

    python3 bench/remote.py [--repeats 3] [--seconds 10]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import DATA, HEY, SCANCER, free_port, hey, wait_for  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=8)
    args = ap.parse_args()
    for needed in (SCANCER, HEY, DATA / "pcam-classification.pt"):
        if not needed.exists():
            sys.exit(f"missing {needed}: run `cargo xtask bench serve` first")
    patches = sorted((DATA / "patches").glob("*.png"))
    port = free_port()
    server = subprocess.Popen([SCANCER, "serve", "--quiet", "--port", str(port), DATA / "pcam-classification.pt"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    runs = {"hey": [], "scancer predict --remote": []}
    try:
        wait_for(f"{url}/ping")
        hey(f"{url}/predictions/pcam-classification", patches[0], 2, args.jobs)  # warm-up
        for r in range(args.repeats):
            runs["hey"].append(hey(f"{url}/predictions/pcam-classification", patches[0], args.seconds,
                                   args.jobs)["rps"])
            started = time.perf_counter()
            out = subprocess.run([SCANCER, "predict", "--remote", url, "-m", "pcam-classification", "-q", "-f",
                                  "jsonl", "--jobs", str(args.jobs), DATA / "patches"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seconds = time.perf_counter() - started
            lines = out.stdout.splitlines()
            if out.returncode != 0 or len(lines) != len(patches):
                sys.exit(f"predict --remote failed ({out.returncode}, {len(lines)} records): {out.stderr}")
            runs["scancer predict --remote"].append(len(patches) / seconds)
            print(f"round {r + 1}: hey {runs['hey'][-1]:.1f} req/s, predict --remote "
                  f"{runs['scancer predict --remote'][-1]:.1f} img/s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait()
    medians = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n{args.jobs} clients/jobs, {args.repeats} rounds, scancer serve (defaults) with the full-width model\n")
    print("| client | requests/s |")
    print("|---|---|")
    for name, value in medians.items():
        print(f"| {name} | {value:.1f} |")
    print(f"| ratio | {medians['scancer predict --remote'] / medians['hey']:.2f} |")


if __name__ == "__main__":
    main()
