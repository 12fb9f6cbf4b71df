#!/usr/bin/env python3
"""TorchScript, AOTInductor and ONNX Runtime side by side in scancer (issue 26; BENCHMARKS.md).

The full-width pcam model (c = 16) in its three formats, as `examples/export_test_models.py --bench
DIR` writes them (DIR/pcam-classification.{pt,pt2,onnx} and DIR/patches/), each format in turn, in
every round:
- forward only: engine_bench (scancer's own forward path and post-processing, pre-made inputs, one
  single-thread instance per core, batch 16);
- ONNX Runtime's worker model, with `--python` (a Python with onnxruntime 1.32): one session per
  core on one intra-op thread each, against one session on every core's thread;
- end to end: `scancer predict` over DIR/patches (decode included), wall time;
- serve: `scancer serve` of the model, `hey` PUTting one patch for `--seconds` with 8 and 32
  keep-alive clients;
then the deployment size of each engine. Medians over `--rounds`; the ratios are against
TorchScript's in the same run.

    cargo build --release && cargo build --release --features bench --example engine_bench
    python3 bench/formats.py --data DIR [--python VENV/bin/python] [--rounds 3] [--seconds 8]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve as ts_bench  # noqa: E402  (hey, wait_for, free_port, stop_all)

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
SCANCER = RELEASE / "scancer"
ENGINE_BENCH = RELEASE / "examples" / "engine_bench"
FORMATS = {"TorchScript (.pt)": "pt", "AOTInductor (.pt2)": "pt2", "ONNX Runtime (.onnx)": "onnx"}
ENV = dict(os.environ, OMP_NUM_THREADS="1", AOTI_RUNTIME_CHECK_INPUTS="1",
           SCANCER_TORCH=str(RELEASE / "libscancer_torch.so"))

ORT_WORKERS = r"""
import sys, threading, time
import numpy as np
import onnxruntime as ort
path, sessions, threads, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
runs = [ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]) for _ in range(sessions)]
name = runs[0].get_inputs()[0].name
x = np.random.default_rng(0).uniform(-1, 1, (16, 3, 96, 96)).astype(np.float32)
for s in runs:
    s.run(None, {name: x})
def work(s, n):
    for _ in range(n):
        s.run(None, {name: x})
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(s, images // 16 // sessions)) for s in runs]
    for w in workers: w.start()
    for w in workers: w.join()
    best = min(best, time.perf_counter() - started)
print(images / best)
"""


def forward(model, instances):
    out = subprocess.run([ENGINE_BENCH, model, "16", "2048", str(instances), "2"], env=ENV, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["images_per_s"]


def ort_workers(python, model, sessions, threads):
    out = subprocess.run([python, "-c", ORT_WORKERS, model, str(sessions), str(threads), "2048"], check=True,
                         capture_output=True, text=True).stdout
    return float(out)


def predict(model, patches):
    started = time.perf_counter()
    subprocess.run([SCANCER, "predict", "-m", model, "-f", "jsonl", "-q", "-o", os.devnull, patches], env=ENV,
                   check=True)
    return len(list(Path(patches).glob("*.png"))) / (time.perf_counter() - started)


def serve(model, patch, seconds, clients):
    port = ts_bench.free_port()
    server = subprocess.Popen([SCANCER, "serve", "--quiet", "--port", str(port), "--no-grpc", f"pcam={model}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        ts_bench.wait_for(f"http://127.0.0.1:{port}/ping")
        url = f"http://127.0.0.1:{port}/predictions/pcam"
        ts_bench.hey(url, patch, 2, 8)
        return {c: ts_bench.hey(url, patch, seconds, c) for c in clients}
    finally:
        ts_bench.stop_all([server])


def mib(paths):
    return sum(Path(p).stat().st_size for p in paths) / (1 << 20)


def sizes():
    """MiB on disk of scancer with each engine, as `cargo xtask dist` installs them."""
    binary = SCANCER.stat().st_size / (1 << 20)
    libtorch = sorted(p for p in (ROOT / ".libtorch" / "lib").resolve().iterdir() if ".so" in p.name)
    torch = mib([RELEASE / "libscancer_torch.so", *libtorch])
    onnx = mib([(ROOT / ".onnxruntime" / "libonnxruntime.so.1").resolve()])
    return {"scancer": binary, "libtorch engine": torch, "onnx runtime": onnx}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="export_test_models.py --bench DIR")
    ap.add_argument("--python", help="a Python with onnxruntime 1.32, for ONNX Runtime's worker model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    clients = [8, 32]
    cores = os.cpu_count()
    models = {name: str(args.data / f"pcam-classification.{ext}") for name, ext in FORMATS.items()}
    patches = str(args.data / "patches")
    patch = sorted(Path(patches).glob("*.png"))[0]
    work = Path(tempfile.mkdtemp(prefix="scancer-formats-"))
    runs = {name: {"forward": [], "predict": []} | {f"serve {c}": [] for c in clients} for name in FORMATS}
    workers = {"1 session per core, 1 thread each": [], "1 session, a thread per core": []}
    for r in range(args.rounds):
        for name, model in models.items():
            runs[name]["forward"].append(forward(model, cores))
            runs[name]["predict"].append(predict(model, patches))
            for c, result in serve(model, patch, args.seconds, clients).items():
                runs[name][f"serve {c}"].append(result)
            print(f"round {r + 1}, {name}: forward {runs[name]['forward'][-1]:.0f} img/s, "
                  f"predict {runs[name]['predict'][-1]:.0f} img/s, serve "
                  + ", ".join(f"{c} clients {runs[name][f'serve {c}'][-1]['rps']:.0f}/s" for c in clients),
                  file=sys.stderr)
        if args.python:
            onnx = models["ONNX Runtime (.onnx)"]
            workers["1 session per core, 1 thread each"].append(ort_workers(args.python, onnx, cores, 1))
            workers["1 session, a thread per core"].append(ort_workers(args.python, onnx, 1, cores))
    med = {name: {k: statistics.median(v) if k in ("forward", "predict")
                  else {m: statistics.median(x[m] for x in v) for m in ("rps", "p50_ms", "p99_ms")}
                  for k, v in kinds.items()} for name, kinds in runs.items()}
    base = med["TorchScript (.pt)"]
    print(f"\nfull-width pcam (c = 16), batch 16, {cores} cores, {args.rounds} rounds, medians; "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| engine | forward only img/s | predict img/s | serve 8 clients /s (p50, p99 ms) | serve 32 clients /s (p50, p99 ms) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, m in med.items():
        cells = [f"{m['forward']:.0f} ({m['forward'] / base['forward']:.2f}x)",
                 f"{m['predict']:.0f} ({m['predict'] / base['predict']:.2f}x)"]
        for c in clients:
            s = m[f"serve {c}"]
            cells.append(f"{s['rps']:.0f} ({s['rps'] / base[f'serve {c}']['rps']:.2f}x; {s['p50_ms']:.1f}, {s['p99_ms']:.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.python:
        print("\nONNX Runtime (Python, same library), batch 16, 2,048 images:\n")
        for name, v in workers.items():
            print(f"- {name}: {statistics.median(v):.0f} img/s")
    size = sizes()
    print(f"\ndeployment: scancer {size['scancer']:.1f} MiB; + libtorch engine and libtorch "
          f"{size['libtorch engine']:.1f} MiB = {size['scancer'] + size['libtorch engine']:.1f} MiB; "
          f"+ ONNX Runtime {size['onnx runtime']:.1f} MiB = {size['scancer'] + size['onnx runtime']:.1f} MiB")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "formats.json").write_text(json.dumps({"runs": runs, "workers": workers, "sizes": size}, indent=1))
    work.rmdir()


if __name__ == "__main__":
    main()
