#!/usr/bin/env python3
"""Archiving a ~1 GiB TorchScript model: `scancer archive` vs torch-model-archiver 0.12 vs `cp`,
side by side, round-robin (see BENCHMARKS.md). Needs torch-model-archiver in the Python
that runs it (and torch to make a real TorchScript model once; without it, a zip of the same layout), and GNU time (/usr/bin/time) for peak memory.

    python bench/archive.py [--repeats 3] [--scancer target/release/scancer]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"


def make_model(path):
    try:
        import torch
    except ImportError:
        # Neither archiver loads the model (scancer only with --verify): without torch, a file laid
        # out like TorchScript's (a stored zip with the 1 GiB tensor as data/0) is the same work.
        import zipfile

        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            z.writestr("big/version", "3\n")
            z.writestr("big/data.pkl", b"\x80\x02}q\x00.")
            with z.open("big/data/0", "w", force_zip64=True) as f:
                for _ in range(1024):
                    f.write(os.urandom(1 << 20))
        return

    class Big(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # 256 Mi float32 of random values: 1 GiB of tensors that barely compress, like real weights.
            self.weight = torch.nn.Parameter(torch.randn(256, 1024, 1024))

        def forward(self, x):
            return x * self.weight[0, 0, 0]

    torch.jit.script(Big()).save(str(path))


def measure(cmd):
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M", *map(str, cmd)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stderr}")
    seconds, kib = out.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kib) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scancer", default=str(ROOT / "target/release/scancer"))
    ap.add_argument("--archiver", default=shutil.which("torch-model-archiver") or "torch-model-archiver")
    ap.add_argument("--before", help="also an earlier scancer binary, to compare with")
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    model = DATA / "big.pt"
    if not model.exists():
        make_model(model)
    size = model.stat().st_size
    out = Path(tempfile.mkdtemp(prefix="scancer-archive-bench-", dir=DATA))
    common = ["--model-name", "big", "--version", "1.0", "--serialized-file", model,
              "--handler", "image_classifier", "--export-path", out, "--force"]
    competitors = {
        "scancer archive": [args.scancer, "archive", *common],
        **({"scancer archive (before)": [args.before, "archive", *common]} if args.before else {}),
        "torch-model-archiver 0.12": [args.archiver, *common],
        "cp (copy only)": ["cp", model, out / "copy.pt"],
    }
    results = {name: [] for name in competitors}
    sizes = {}
    for r in range(args.repeats):
        for name, cmd in competitors.items():
            results[name].append(measure(cmd))
            produced = out / ("copy.pt" if name.startswith("cp") else "big.mar")
            sizes[name] = produced.stat().st_size
            if name.startswith("scancer"):
                shutil.move(out / "big.mar", out / "scancer-big.mar")
        print(f"round {r + 1}/{args.repeats} done", file=sys.stderr)
    import zipfile

    scripted = any("/code/" in n for n in zipfile.ZipFile(model).namelist())
    kind = "TorchScript" if scripted else "zip laid out like TorchScript (made without torch)"
    lines = [f"model: {size / 2**30:.2f} GiB {kind} of random float32; {args.repeats} rounds, medians", "",
             "| competitor | wall (s) | peak RSS (MiB) | output (MB) |", "| --- | ---: | ---: | ---: |"]
    med = {}
    for name, runs in results.items():
        med[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        lines.append(f"| {name} | {med[name][0]:.2f} | {med[name][1]:.0f} | {sizes[name] / 1e6:.0f} |")
    ratio = med["torch-model-archiver 0.12"][0] / med["scancer archive"][0]
    lines += ["", f"scancer is {ratio:.1f}x faster than torch-model-archiver (target >= 3x); "
              f"peak memory {med['scancer archive'][1]:.0f} MiB (target < 50 MiB)"]
    print("\n".join(lines))
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
