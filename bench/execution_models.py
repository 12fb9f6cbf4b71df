#!/usr/bin/env python3
"""The CPU execution models of issue 23, measured side by side: forward passes only (forward_bench,
the engine's own C ABI, pre-made tensors, every output read back), the full-width pcam model.

Each candidate is (model instances side by side, intra-op threads each, batch shape); rounds run the
candidates round-robin; medians of images/s. Also prints, per oneDNN ISA cap, which batch shapes give
each image bit for bit the answer it gets at batch 16 (forward_bench --parity).

usage: python3 bench/execution_models.py [--rounds 5] [--images 4000] [--isa AVX2 --isa AVX ...]
"""

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORWARD = ROOT / "target" / "release" / "examples" / "forward_bench"
MODEL = ROOT / "bench" / "data" / "pcam-classification.pt"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--isa", action="append", default=[], help="ONEDNN_MAX_CPU_ISA caps to check parity under")
    args = ap.parse_args()
    cores = os.cpu_count()
    candidates = [
        (1, cores, 16, "one instance, every core's thread, batch 16 (before issue 23)"),
        (cores, 1, 16, "one single-thread instance per core, batch 16"),
        (cores, 1, 8, "one single-thread instance per core, batch 8"),
        (cores, 1, 4, "one single-thread instance per core, batch 4"),
        (1, 1, 16, "one single-thread instance, batch 16"),
        (1, 1, 4, "one single-thread instance, batch 4"),
        (1, 1, 1, "one single-thread instance, batch 1"),
        (1, cores, 4, "one instance, every core's thread, batch 4"),
    ]
    rates = {c: [] for c in candidates}
    # The OpenMP policy scancer set before issue 23 (its multi-thread rows spin briefly at barriers);
    # single-thread instances form no team, so it does not touch them.
    env = dict(os.environ, GOMP_SPINCOUNT="3000", KMP_BLOCKTIME="1")
    for r in range(args.rounds):
        for c in candidates:
            workers, threads, batch, _ = c
            out = subprocess.run([FORWARD, MODEL, str(batch), str(args.images), "optimized", str(workers),
                                  str(threads)], check=True, capture_output=True, text=True, env=env).stdout
            rates[c].append(json.loads(out)["images_per_s"])
    base = statistics.median(rates[candidates[0]])
    print(f"forward only, full-width pcam (c = 16), {args.images} images a run, {args.rounds} rounds, medians\n")
    print("| instances x intra-op threads | batch | images/s (median) | min-max | vs before |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for c in candidates:
        workers, threads, batch, name = c
        med = statistics.median(rates[c])
        print(f"| {workers} x {threads}: {name} | {batch} | {med:.0f} | {min(rates[c]):.0f}-{max(rates[c]):.0f} | {med / base:.2f} |")
    print("\nbatch shapes whose per-image outputs are bit-identical to batch 16's (one thread):\n")
    for isa in ["default"] + args.isa:
        env = dict(os.environ)
        if isa != "default":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        out = subprocess.run([FORWARD, "--parity", MODEL, "16", "1"], check=True, capture_output=True,
                             text=True, env=env).stdout
        same = [k for k, v in json.loads(out)["bit_identical"].items() if v]
        print(f"- ISA {isa}: {', '.join(same)}")


if __name__ == "__main__":
    main()
