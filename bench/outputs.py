#!/usr/bin/env python3
"""What trustworthy output costs (issue #12; see BENCHMARKS.md): records flushed one by one into a
visible FILE.partial, renamed when complete, against the previous scancer that buffered them into a
hidden temporary file. Two release binaries run round-robin on the same inputs, `--repeats` times:

- a directory scan of `--patches` 96x96 patches (the bundled examples, copied), JSON Lines and CSV
  to `-o FILE`, and JSON Lines to a pipe;
- segmentation masks, one PNG per patch (`--mask-dir`);
- whole slides: `--slides` copies of the test slides (PNG, striped, tiled and BigTIFF) at stride 16
  with `--tiles` and `--heatmap`.

Usage: python3 bench/outputs.py --old OLD_SCANCER [--new target/release/scancer] [--repeats 5]
Only the standard library is needed.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
SEGMENTATION = ROOT / "testdata" / "models" / "tissue-segmentation.pt"
SLIDES = ["tissue.png", "tissue-strips.tif", "tissue-tiled.tif", "tissue-bigtiff.tif"]


def timed(cmd, cwd):
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if out.returncode not in (0, 1):
        sys.exit(f"failed ({out.returncode}): {' '.join(map(str, cmd))}\n{out.stderr}")
    return seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="the scancer binary before the change")
    ap.add_argument("--new", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--patches", type=int, default=2400)
    ap.add_argument("--slides", type=int, default=8)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="scancer-bench-"))
    patches = work / "patches"
    patches.mkdir()
    sources = sorted((ROOT / "examples" / "patches").glob("*.png"))
    for k in range(args.patches):
        shutil.copy(sources[k % len(sources)], patches / f"p{k:05}.png")
    slides = work / "slides"
    slides.mkdir()
    for k in range(args.slides):
        name = SLIDES[k % len(SLIDES)]
        shutil.copy(ROOT / "testdata" / "slides" / name, slides / f"s{k:02}-{name}")

    base = ["predict", "-m", str(MODEL), "-q"]
    cases = {
        "scan, -f jsonl -o FILE": base + ["-f", "jsonl", "-o", "out.jsonl", str(patches)],
        "scan, -f csv -o FILE": base + ["-f", "csv", "-o", "out.csv", str(patches)],
        "scan, -f jsonl to a pipe": base + ["-f", "jsonl", str(patches)],
        "scan, segmentation masks": ["predict", "-m", str(SEGMENTATION), "-q", "-f", "jsonl", "-o",
                                     "masks.jsonl", "--mask-dir", "masks", str(patches)],
        "slides, stride 16, --tiles, --heatmap": base
        + ["--tile", "--stride", "16", "-f", "jsonl", "-o", "slides.jsonl", "--tiles", "tiles.csv",
           "--heatmap", "maps/", str(slides)],
    }
    times = {(case, who): [] for case in cases for who in ("old", "new")}
    for _ in range(args.repeats):
        for case, cmd in cases.items():
            for who, binary in (("old", args.old), ("new", args.new)):
                cwd = work / who
                shutil.rmtree(cwd, ignore_errors=True)
                cwd.mkdir()
                times[(case, who)].append(timed([binary] + cmd, cwd))
    print(f"{args.repeats} rounds, medians; {args.patches} patches, {args.slides} slides\n")
    print("| case | old (s) | new (s) | new / old |")
    print("| --- | ---: | ---: | ---: |")
    for case in cases:
        old = statistics.median(times[(case, "old")])
        new = statistics.median(times[(case, "new")])
        print(f"| {case} | {old:.3f} | {new:.3f} | {new / old:.3f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
