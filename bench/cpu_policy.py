#!/usr/bin/env python3
"""A busy machine: `serve` with one client, and a `predict` directory scan, on a quiet machine and
with busy processes taking the CPU (issue 14's CPU policy). Competitors: scancer as built (its
OpenMP policy), the same binary with GNU libgomp's default spinning (`GOMP_SPINCOUNT=300000`,
what scancer did before), and optionally an earlier binary. Round-robin, alternating order, medians.

    python3 bench/cpu_policy.py [--before OLD/scancer] [--rounds 3] [--hey hey]

Busy processes are `python3 -c "while True: pass"`: two for serve (both cores of this VM taken), one
for predict.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_commands  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
PATCH = ROOT / "examples" / "patches" / "patch-00.png"


class Busy:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
            p.wait()


def serve_rate(binary, env, hey, seconds):
    return model_commands.serve_rate(binary, hey, seconds, clients=1, env=env)


def predict_seconds(binary, env, directory):
    started = time.perf_counter()
    subprocess.run([str(binary), "predict", "-m", MODEL, "-f", "jsonl", "-q", directory],
                   stdout=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--after", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--before", help="an earlier scancer binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hey", default=shutil.which("hey") or "hey")
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--patches", type=int, default=2000)
    args = ap.parse_args()
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    competitors = {
        "scancer (its policy)": (args.after, clean),
        "scancer, libgomp's default spin": (args.after, dict(clean, GOMP_SPINCOUNT="300000")),
    }
    if args.before:
        competitors["before"] = (args.before, clean)
    scratch = Path(tempfile.mkdtemp())
    examples = sorted((ROOT / "examples" / "patches").glob("*.png"))
    for k in range(args.patches):
        shutil.copy(examples[k % len(examples)], scratch / f"patch-{k:05}.png")
    measures = {
        "serve, 1 client, quiet (answers/s)": lambda b, e: serve_rate(b, e, args.hey, args.seconds),
        "serve, 1 client, 2 busy processes (answers/s)":
            lambda b, e: _with(Busy(2), lambda: serve_rate(b, e, args.hey, args.seconds)),
        f"predict {args.patches} patches, quiet (s)": lambda b, e: predict_seconds(b, e, scratch),
        f"predict {args.patches} patches, 1 busy process (s)":
            lambda b, e: _with(Busy(1), lambda: predict_seconds(b, e, scratch)),
    }
    results = {(m, c): [] for m in measures for c in competitors}
    for r in range(args.rounds):
        for m, run in measures.items():
            order = list(competitors.items()) if r % 2 == 0 else list(competitors.items())[::-1]
            for name, (binary, env) in order:
                results[(m, name)].append(run(binary, env))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    shutil.rmtree(scratch)
    names = list(competitors)
    print(f"{args.rounds} rounds, alternating order; medians\n")
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for m in measures:
        print(f"| {m} | " + " | ".join(f"{statistics.median(results[(m, n)]):.4g}" for n in names) + " |")


def _with(context, f):
    with context:
        return f()


if __name__ == "__main__":
    main()
