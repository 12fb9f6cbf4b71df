#!/usr/bin/env python3
"""Whole-slide benchmark (see BENCHMARKS.md): `scancer predict --tile` against the notebook's
algorithm in Python (bench/slide_notebook.py), side by side on the same 10,000 x 10,000 slide with the
same full-width pcam model, round-robin, `--repeats` times; wall time and peak RSS (the process's
ru_maxrss) of each, and the largest difference between their per-window probabilities. scancer runs
with its reader thread (`SCANCER_SLIDE_READER=thread`) and without (`=inline`), and both are set
against the forward-only limit: the slide's tissue windows through the engine's forward pass alone
(crates/torch/examples/forward_bench, same batch size). Then the 40,000 x 40,000 tiled TIFF, scancer
both ways, and the cost of `--explain` per patch (predict with and without it on the same patches).

Needs the venv of the predict benchmark plus scipy and tifffile; the data (bench/data/slides) is
generated once. `cargo xtask bench` builds scancer and forward_bench (release) and the model first.

    python3 bench/slides.py --python /root/venv-torch/bin/python [--repeats 3] [--skip-large]
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SLIDES = DATA / "slides"
SCANCER = ROOT / "target" / "release" / "scancer"
FORWARD = ROOT / "target" / "release" / "examples" / "forward_bench"

GENERATE = r'''
import sys
import numpy as np
import tifffile
from PIL import Image

def tissue_mask(h, w, rng, scale):
    # Smooth random blobs: a coarse noise field, blurred by repetition and averaging, thresholded.
    coarse = rng.random((h // scale + 3, w // scale + 3))
    smooth = sum(np.roll(np.roll(coarse, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    return smooth > 0.5

def tile(mask_block, rng):
    h, w = mask_block.shape
    base = np.array([200, 120, 185], np.int16)
    texture = rng.integers(-60, 40, (h, w, 3), dtype=np.int16)
    nuclei = (rng.random((h, w)) < 0.02)[:, :, None] * np.array([-90, -70, -20], np.int16)
    rgb = np.clip(base + texture + nuclei, 0, 255).astype(np.uint8)
    out = np.full((h, w, 3), 255, np.uint8)
    out[mask_block] = rgb[mask_block]
    return out

kind, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(16)
scale = 400
mask = tissue_mask(size, size, rng, scale)
def block_mask(y, x, h, w):
    ys = (np.arange(y, y + h) // scale)[:, None]
    xs = (np.arange(x, x + w) // scale)[None, :]
    return mask[ys, xs]
if kind == "png":
    image = tile(block_mask(0, 0, size, size), rng)
    Image.fromarray(image).save(path, format="PNG", compress_level=1)
else:
    T = 512
    def tiles():
        for y in range(0, size, T):
            for x in range(0, size, T):
                h, w = min(T, size - y), min(T, size - x)
                block = np.full((T, T, 3), 255, np.uint8)
                block[:h, :w] = tile(block_mask(y, x, h, w), rng)
                yield block
    tifffile.imwrite(path, tiles(), shape=(size, size, 3), dtype=np.uint8, tile=(T, T),
                     compression="zlib", compressionargs={"level": 1}, bigtiff=True, photometric="rgb")
'''


def measure(cmd, env=None):
    """Wall seconds and peak RSS (MiB) of a command."""
    started = time.perf_counter()
    process = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=None if env is None else {**os.environ, **env})
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{stderr}")
    return seconds, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="python3")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    model, config = DATA / "pcam-classification.pt", DATA / "pcam-classification.toml"
    for needed in (SCANCER, model):
        if not needed.exists():
            sys.exit(f"missing {needed}: run `cargo xtask bench` first")
    SLIDES.mkdir(parents=True, exist_ok=True)
    png = SLIDES / "slide-10000.png"
    big = SLIDES / "slide-40000-tiled.tif"
    for kind, path, size in [("png", png, 10000)] + ([] if args.skip_large else [("tif", big, 40000)]):
        if not path.exists():
            print(f"generating {path} ...", file=sys.stderr)
            subprocess.run([args.python, "-c", GENERATE, kind, str(path) + ".partial", str(size)], check=True)
            os.replace(str(path) + ".partial", path)

    work = DATA / "slides" / "out"
    work.mkdir(exist_ok=True)
    scancer = [SCANCER, "predict", "-q", "-m", model, "-c", config, "--tile", "-f", "jsonl",
               "--heatmap", work / "scancer.png", "--tiles", work / "scancer.csv", png]
    inline = {"SCANCER_SLIDE_READER": "inline"}
    thread = {"SCANCER_SLIDE_READER": "thread"}
    competitors = {
        "python notebook": ([args.python, ROOT / "bench/slide_notebook.py", model, png, work / "python.png",
                             work / "python.csv"], None),
        "scancer predict --tile": (scancer, thread),
        "scancer predict --tile, no reader thread": (scancer, inline),
    }
    runs = {name: [] for name in competitors}
    for r in range(args.repeats):
        for name, (cmd, env) in competitors.items():
            runs[name].append(measure(cmd, env))
            print(f"round {r + 1} {name}: {runs[name][-1][0]:.2f} s, {runs[name][-1][1]:.0f} MiB", file=sys.stderr)

    theirs = {(int(row["x"]), int(row["y"])): float(row["probability"])
              for row in csv.DictReader(open(work / "python.csv"))}
    ours = {(int(row["x"]), int(row["y"])): float(row["probability"])
            for row in csv.DictReader(open(work / "scancer.csv")) if row["tissue"] == "true"}
    same_tiles = set(theirs) == set(ours)
    diff = max(abs(theirs[k] - ours[k]) for k in theirs.keys() & ours.keys())
    flips = sum((theirs[k] > 0.5) != (ours[k] > 0.5) for k in theirs.keys() & ours.keys())

    summary = {name: {"seconds": statistics.median(s for s, _ in v), "peak_rss_mib": max(m for _, m in v)}
               for name, v in runs.items()}

    def forward_limit(windows):
        """Seconds the engine's forward pass alone takes for `windows` windows (median of 3)."""
        rates = []
        for _ in range(3):
            out = subprocess.run([FORWARD, model, "16", str(windows), "optimized"], check=True,
                                 capture_output=True, text=True).stdout
            rates.append(json.loads(out)["images_per_s"])
        return windows / statistics.median(rates)

    tissue = len(theirs)
    limit = forward_limit(tissue)
    py, sc = summary["python notebook"], summary["scancer predict --tile"]
    print(f"\n10,000 x 10,000 PNG, {len(theirs)} tissue windows of {len(list(csv.DictReader(open(work / 'scancer.csv'))))}, "
          f"{args.repeats} rounds\n")
    print("| competitor | median wall time | peak RSS |")
    print("|---|---|---|")
    for name, row in summary.items():
        print(f"| {name} | {row['seconds']:.2f} s | {row['peak_rss_mib']:.0f} MiB |")
    print(f"| python / scancer | {py['seconds'] / sc['seconds']:.1f}x | {py['peak_rss_mib'] / sc['peak_rss_mib']:.1f}x |")
    print(f"\nsame tissue windows: {same_tiles}; largest probability difference: {diff:.2e}; "
          f"class flips at 0.5: {flips}")
    print(f"forward-only limit for the {tissue} tissue windows: {limit:.2f} s; share of it reached: "
          f"{limit / sc['seconds']:.2f} with the reader thread, "
          f"{limit / summary['scancer predict --tile, no reader thread']['seconds']:.2f} without")
    result = {"runs": runs, "summary": summary, "same_tiles": same_tiles, "max_diff": diff, "flips": flips,
              "forward_limit_s": limit}
    if not args.skip_large:
        large = [SCANCER, "predict", "-q", "-m", model, "-c", config, "--tile", "-f", "jsonl",
                 "--heatmap", work / "large.png", "--tiles", work / "large.csv", big]
        result["large"] = {}
        for name, env in (("reader thread", thread), ("no reader thread", inline)):
            seconds, rss = measure(large, env)
            print(f"\n40,000 x 40,000 tiled BigTIFF (zlib, 512x512 tiles), {name}: {seconds:.1f} s, "
                  f"peak RSS {rss:.0f} MiB")
            result["large"][name] = {"seconds": seconds, "peak_rss_mib": rss}
        windows = sum(1 for row in csv.DictReader(open(work / "large.csv")) if row["tissue"] == "true")
        limit = forward_limit(windows)
        result["large"]["tissue_windows"] = windows
        result["large"]["forward_limit_s"] = limit
        print(f"forward-only limit for its {windows} tissue windows: {limit:.1f} s; share reached: "
              f"{limit / result['large']['reader thread']['seconds']:.2f} with the reader thread, "
              f"{limit / result['large']['no reader thread']['seconds']:.2f} without")

    # --explain: predict the same patches with and without explanations.
    patches = sorted((DATA / "patches").glob("*.png"))[:200]
    plain = [SCANCER, "predict", "-q", "-m", model, "-c", config, "-f", "jsonl", *patches]
    explained = plain + ["--explain", work / "explanations"]
    times = {"plain": [], "explain": []}
    for _ in range(args.repeats):
        times["plain"].append(measure(plain)[0])
        times["explain"].append(measure(explained)[0])
    per_patch = (statistics.median(times["explain"]) - statistics.median(times["plain"])) / len(patches)
    print(f"\n--explain on {len(patches)} patches: {statistics.median(times['explain']):.2f} s against "
          f"{statistics.median(times['plain']):.2f} s without: {per_patch * 1000:.1f} ms per patch")
    result["explain"] = {"patches": len(patches), "times": times, "per_patch_s": per_patch}
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "slides.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
