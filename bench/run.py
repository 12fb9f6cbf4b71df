#!/usr/bin/env python3
"""Side-by-side benchmark of `scancer predict` (run by `cargo xtask bench`; see BENCHMARKS.md).

Competitors run round-robin in one process, each `--repeats` times; medians and ratios are printed
as a Markdown table and saved under bench/results/. Needs a Python with torch 2.13, torchvision and
Pillow for the baselines and to generate the data (`--python`, default: python3).
"""

import argparse
import json
import shutil
import statistics
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SCANCER = ROOT / "target" / "release" / "scancer"
FORWARD = ROOT / "target" / "release" / "examples" / "forward_bench"
DECODE = ROOT / "target" / "release" / "examples" / "decode_bench"


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(map(str, cmd))}\n{out.stderr}")
    return seconds, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="python3", help="a Python with torch 2.13 + torchvision + Pillow")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--patches", type=int, default=2000)
    ap.add_argument("--before", help="an earlier scancer binary (its engine beside it), run beside")
    args = ap.parse_args()

    model = DATA / "pcam-classification.pt"
    patches = DATA / "patches"
    if not model.exists() or len(list(patches.glob("*.png"))) < args.patches:
        subprocess.run([args.python, ROOT / "examples/export_test_models.py", "--bench", DATA,
                        "--patches", str(args.patches)], check=True)
    shutil.copy(ROOT / "examples/pcam-classification.toml", DATA / "pcam-classification.toml")
    n = len(list(patches.glob("*.png")))
    one = sorted(patches.glob("*.png"))[0]
    b = str(args.batch_size)

    competitors = {
        "scancer predict (end to end)": [SCANCER, "predict", "-m", model, "-f", "jsonl", "-q", "-b", b, patches],
        "scancer predict, one image": [SCANCER, "predict", "-m", model, "-f", "jsonl", "-q", "-b", b, one],
        "forward only, scancer's model path (optimised)": [FORWARD, model, b, str(n), "optimized"],
        "decode only, one thread (scancer's decoder and preprocessing)": [DECODE, DATA / "pcam-classification.toml", patches, "1"],
        "forward only, graph as saved (--no-optimize)": [FORWARD, model, b, str(n), "plain"],
        "forward only, PyTorch default (Python)": [args.python, ROOT / "bench/python_baseline.py", "forward", model, str(n), b],
        "scancer predict --no-optimize (end to end)": [SCANCER, "predict", "-m", model, "-f", "jsonl", "-q", "-b", b, "--no-optimize", patches],
        "Python handler loop (PIL, 1 at a time)": [args.python, ROOT / "bench/python_baseline.py", "handler", model, patches],
        "Python batched DataLoader loop": [args.python, ROOT / "bench/python_baseline.py", "batched", model, patches, b],
    }
    if args.before:
        competitors["scancer predict before (end to end)"] = [args.before, "predict", "-m", model, "-f", "jsonl",
                                                             "-q", "-b", b, patches]
        competitors["scancer predict before, one image"] = [args.before, "predict", "-m", model, "-f", "jsonl",
                                                           "-q", "-b", b, one]
    times = {name: [] for name in competitors}
    forward_rates = {name: [] for name in competitors if name.startswith(("forward", "decode"))}
    for r in range(args.repeats):
        for name, cmd in competitors.items():
            seconds, stdout = timed([str(c) for c in cmd])
            times[name].append(seconds)
            if name.startswith(("forward", "decode")):
                forward_rates[name].append(json.loads(stdout)["images_per_s"])
        print(f"round {r + 1}/{args.repeats} done", file=sys.stderr)

    med = {name: statistics.median(t) for name, t in times.items()}
    rate = {name: n / s for name, s in med.items()}
    rate["scancer predict, one image"] = 1 / med["scancer predict, one image"]
    if args.before:
        rate["scancer predict before, one image"] = 1 / med["scancer predict before, one image"]
    for name, rates in forward_rates.items():
        rate[name] = statistics.median(rates)
    forward = rate["forward only, scancer's model path (optimised)"]
    decode = rate["decode only, one thread (scancer's decoder and preprocessing)"]
    # Decoding takes 1/decode core-seconds an image from the cores the forward passes use.
    forward_decode = 1 / (1 / forward + 1 / (decode * (os.cpu_count() or 1)))
    forward_plain = rate["forward only, graph as saved (--no-optimize)"]
    forward_pytorch = rate["forward only, PyTorch default (Python)"]
    plain = rate["scancer predict --no-optimize (end to end)"]
    scancer = rate["scancer predict (end to end)"]
    # Start-up (libtorch, model load, warm-up) is what a one-image run costs; without it:
    steady = (n - 1) / (med["scancer predict (end to end)"] - med["scancer predict, one image"])
    batched = rate["Python batched DataLoader loop"]
    handler = rate["Python handler loop (PIL, 1 at a time)"]

    lines = [
        f"{n} patches of 96x96 PNG, full-width pcam ModelCNN (c = 16), batch size {b}, "
        f"{args.repeats} rounds, medians; {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "| competitor | median wall time (s) | images/s |",
        "| --- | ---: | ---: |",
    ]
    for name, s in med.items():
        wall = "(in-process timing)" if name.startswith(("forward", "decode")) else f"{s:.3f}"
        lines.append(f"| {name} | {wall} | {rate[name]:.1f} |")
    lines += [
        "",
        "| ratio | value | target |",
        "| --- | ---: | --- |",
        f"| forward+decode limit (images/s) | {forward_decode:.1f} | |",
        f"| scancer end to end / forward+decode limit | {scancer / forward_decode:.2f} | >= 0.85 |",
        f"| scancer without start-up / forward+decode limit | {steady / forward_decode:.2f} | |",
        f"| scancer end to end / forward-only limit (same model path) | {scancer / forward:.2f} | >= 0.90 |",
        f"| scancer without start-up / forward-only limit | {steady / forward:.2f} | |",
        f"| scancer --no-optimize end to end / forward-only as saved | {plain / forward_plain:.2f} | >= 0.90 |",
        f"| optimised forward / PyTorch default forward | {forward / forward_pytorch:.2f} | > 1 |",
        f"| scancer end to end / Python batched loop | {scancer / batched:.2f} | >= 2.0 |",
        f"| scancer end to end / Python handler loop | {scancer / handler:.2f} | |",
        f"| single-image `scancer predict` wall time | {med['scancer predict, one image']:.3f} s | < 0.5 s |",
    ]
    if args.before:
        lines += [
            f"| scancer end to end / before | {scancer / rate['scancer predict before (end to end)']:.2f} | |",
            f"| single-image wall time, before | {med['scancer predict before, one image']:.3f} s | |",
        ]
    report = "\n".join(lines)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(report + "\n")
    (out / "latest.json").write_text(json.dumps({"times": times, "forward_rates": forward_rates}, indent=1))
    return 0


if __name__ == "__main__":
    main()
