#!/usr/bin/env python3
"""The GPU check: scancer on an NVIDIA GPU through the libtorch engine, against the CPU and PyTorch.

Run it on a machine with an NVIDIA GPU, a CUDA PyTorch 2.13.0 importable by python3 (PyPI's default
Linux wheel: `pip install torch==2.13.0`), Rust and this clone:

    python3 bench/gpu_check.py            # writes bench/results/gpu.json and prints a Markdown table

It builds scancer and its engine against that PyTorch (`LIBTORCH_USE_PYTORCH=1`, target/cuda), then:
1. predict: a directory of patches with `--device cuda` and `--device cpu`; every probability within
   1e-4, every label equal (a label may differ only where the CPU probability is within 1e-4 of the
   threshold);
2. slides: a whole slide (testdata/slides/tissue-tiled.tif) on both, `--tiles` probabilities within 1e-4;
3. serve: `serve --device cuda`, the same patches over HTTP, against the CPU predictions;
4. throughput: `predict` of the directory on the GPU (images/s, end to end) against PyTorch's
   forward-only loop on the same GPU and model (pre-made tensors, inference_mode, the same batch).

Every step prints what it did; the first failure ends the check with exit 1 and says which step. CI
never runs this (it has no GPU). `--rehearse` runs every step on a machine without a GPU, with the
CPU standing in for the GPU and the release build in target/release (no PyTorch baseline unless
torch is importable): it checks the script itself, so that the one run on a GPU machine works.
"""

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "target" / "cuda"
BIN = TARGET / "release" / "scancer"
MODEL = ROOT / "examples" / "pcam-classification.pt"
SLIDE = ROOT / "testdata" / "slides" / "tissue-tiled.tif"
TOLERANCE = 1e-4
# The device under test; `--rehearse` makes it the CPU.
DEVICE = "cuda"


def step(text):
    print(f"gpu-check: {text}", file=sys.stderr, flush=True)


def fail(text):
    sys.exit(f"gpu-check: FAILED: {text}")


def run(cmd, **kw):
    out = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if out.returncode != 0:
        fail(f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def preflight():
    if shutil.which("nvidia-smi") is None:
        fail("no nvidia-smi: this is not a GPU machine")
    gpu = run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]).stdout.strip()
    probe = run([sys.executable, "-c", "import torch, json; print(json.dumps([torch.__version__, "
                 "torch.version.cuda, torch.cuda.is_available()]))"]).stdout
    version, cuda, available = json.loads(probe)
    if not version.startswith("2.13.0"):
        fail(f"PyTorch {version} is importable; tch 0.26 needs exactly 2.13.0 (pip install torch==2.13.0)")
    if not available:
        fail(f"PyTorch {version} (CUDA {cuda}) sees no GPU")
    return {"gpu": gpu, "torch": version, "cuda": cuda}


def build():
    # torch-sys prefers LIBTORCH_USE_PYTORCH over the LIBTORCH that .cargo/config.toml sets.
    env = dict(os.environ, LIBTORCH_USE_PYTORCH="1", CARGO_TARGET_DIR=str(TARGET))
    step("building scancer and its engine against the Python PyTorch (target/cuda)")
    started = time.perf_counter()
    out = subprocess.run(["cargo", "build", "--release", "-p", "scancer", "-p", "scancer-torch"],
                         cwd=ROOT, env=env)
    if out.returncode != 0:
        fail("cargo build failed (see above)")
    return round(time.perf_counter() - started, 1)


def patches(into, n):
    """n patches: the bundled examples, repeated under distinct names."""
    into.mkdir(parents=True, exist_ok=True)
    examples = sorted((ROOT / "examples" / "patches").glob("*.png"))
    for k in range(n):
        shutil.copy(examples[k % len(examples)], into / f"patch-{k:05}.png")
    return into


def predictions(device, directory, batch):
    out = run([BIN, "predict", "-m", MODEL, "--device", device, "-b", batch, "-f", "jsonl", "-q", directory])
    return {Path(r["path"]).name: r for r in map(json.loads, out.stdout.splitlines())}


def compare(what, cpu, gpu, key):
    if cpu.keys() != gpu.keys():
        fail(f"{what}: CPU and GPU answered for different inputs")
    worst = 0.0
    for name, c in cpu.items():
        g = gpu[name]
        pc, pg = key(c), key(g)
        if pc is None or pg is None:
            if pc != pg:
                fail(f"{what}: {name}: {pc} on the CPU, {pg} on the GPU")
            continue
        diff = abs(pc - pg)
        worst = max(worst, diff)
        # Labels agree, except where the probability is within the tolerance of the threshold.
        if isinstance(c, dict) and c.get("label") != g.get("label") and abs(pc - 0.5) > TOLERANCE:
            fail(f"{what}: {name}: {c.get('label')} on the CPU, {g.get('label')} on the GPU")
        if diff > TOLERANCE:
            fail(f"{what}: {name}: probability {pc} on the CPU, {pg} on the GPU (over {TOLERANCE})")
    step(f"{what}: {len(cpu)} answers agree, largest difference {worst:.2e}")
    return worst


def positive(record):
    p = record.get("probabilities") or {}
    values = list(p.values())
    return values[-1] if values else None


def slide_tiles(device, scratch):
    tiles = scratch / f"tiles-{device}.csv"
    run([BIN, "predict", "-m", MODEL, "--device", device, "-q", "-f", "jsonl", "--tile", "--tiles", tiles, SLIDE])
    with open(tiles, newline="") as f:
        rows = list(csv.DictReader(f))
    prob = next(k for k in rows[0] if k.startswith("prob"))
    return {f"{r['x']},{r['y']}": {"p": float(r[prob]) if r[prob] else None} for r in rows}


def serve_answers(directory):
    proc = subprocess.Popen([str(BIN), "serve", "--port", "0", "--no-grpc", "--device", DEVICE, str(MODEL)],
                            stderr=subprocess.PIPE, text=True)
    port, deadline, seen = None, time.monotonic() + 120, []
    try:
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "listening on http://127.0.0.1:" in line:
                port = int(line.rsplit(":", 1)[1].split("/")[0])
        if port is None:
            fail(f"serve --device {DEVICE} did not start:\n" + "".join(seen))
        name = MODEL.stem
        # The device the model really runs on, as TorchServe's describe answer reports it.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models/{name}", timeout=30) as response:
            described = json.loads(response.read())
        device_type = described[0].get("deviceType")
        want = "gpu" if DEVICE == "cuda" else "cpu"
        if device_type != want:
            fail(f"serve --device {DEVICE} runs on {device_type}, not {want}: {described}")
        answers = {}
        for path in sorted(directory.glob("*.png")):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/predictions/{name}?details=true",
                                             data=path.read_bytes(), method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                answers[path.name] = json.loads(response.read())
        return answers
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def throughput(directory, batch, repeats):
    rates = []
    n = len(list(directory.glob("*.png")))
    for _ in range(repeats):
        started = time.perf_counter()
        run([BIN, "predict", "-m", MODEL, "--device", DEVICE, "-b", batch, "-f", "jsonl", "-q", directory])
        rates.append(n / (time.perf_counter() - started))
    code = f"""
import json, time, torch
model = torch.jit.load({str(MODEL)!r}, map_location={DEVICE!r}).eval()
x = torch.rand({batch}, 3, 96, 96, device={DEVICE!r}) * 2 - 1
sync = torch.cuda.synchronize if {DEVICE!r} == "cuda" else (lambda: None)
rates = []
with torch.inference_mode():
    for _ in range(3):
        model(x).cpu()
    for _ in range({repeats}):
        sync(); t = time.perf_counter()
        for _ in range(-(-{n} // {batch})):
            model(x).cpu()
        sync(); rates.append(-(-{n} // {batch}) * {batch} / (time.perf_counter() - t))
print(json.dumps(rates))
"""
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    if probe.returncode != 0 and DEVICE == "cpu":
        step("no PyTorch here: the PyTorch baseline is left out of the rehearsal")
        return statistics.median(rates), None
    torch_rates = json.loads(run([sys.executable, "-c", code]).stdout)
    return statistics.median(rates), statistics.median(torch_rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patches", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-build", action="store_true", help="reuse target/cuda")
    ap.add_argument("--rehearse", action="store_true",
                    help="no GPU: the CPU stands in for it, with the release build in target/release")
    args = ap.parse_args()
    global BIN, DEVICE
    if args.rehearse:
        BIN, DEVICE = ROOT / "target" / "release" / "scancer", "cpu"
        result = {"gpu": "none (rehearsal: the CPU stands in)", "torch": None, "cuda": None, "build_s": None}
    else:
        result = preflight()
        step(f"{result['gpu']}; PyTorch {result['torch']} (CUDA {result['cuda']})")
        result["build_s"] = None if args.skip_build else build()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        few = patches(scratch / "few", 64)
        cpu = predictions("cpu", few, str(args.batch_size))
        gpu = predictions(DEVICE, few, str(args.batch_size))
        result["predict_max_diff"] = compare("predict", cpu, gpu, positive)
        result["slide_max_diff"] = compare("slides", slide_tiles("cpu", scratch), slide_tiles(DEVICE, scratch),
                                           lambda r: r["p"])
        served = serve_answers(few)
        # ?details=true answers with the record's label, class, score and probabilities.
        result["serve_max_diff"] = compare("serve", cpu, served, positive)
        many = patches(scratch / "many", args.patches)
        ours, theirs = throughput(many, str(args.batch_size), args.repeats)
        result.update({"patches": args.patches, "batch_size": args.batch_size,
                       "scancer_images_per_s": round(ours, 1),
                       "pytorch_forward_images_per_s": theirs and round(theirs, 1),
                       "ratio": theirs and round(ours / theirs, 3)})
    out = ROOT / "bench" / "results" / ("gpu-rehearsal.json" if args.rehearse else "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| check | result |\n|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v} |")


if __name__ == "__main__":
    main()
