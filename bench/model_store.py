#!/usr/bin/env python3
"""Workers and model-store operations: `scancer serve --model-store` against a real TorchServe 0.12 on
the same archive and store, in one run (see BENCHMARKS.md, "serve as the model store").

Both start empty with the model API on and token authorization off; the full-width pcam ModelCNN
(bench/data, made by `cargo xtask bench`) is registered through the management API (timed), then
for 1, 2 and 4 workers each server is scaled synchronously (timed) and `hey` runs 8 and 32 clients
PUTting one 96x96 PNG for `--seconds`, the two servers taking turns, `--repeats` times. Batches of
one on both (TorchServe's default), so that only the workers differ. Reports median requests/s and
p99 per cell, the ratios, and the median register, scale-up and unregister times.

    python3 bench/model_store.py --python /work/venv-torch/bin/python [--repeats 3] [--seconds 8]
"""

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import DATA, HEY, ROOT, SCANCER, free_port, hey, wait_for  # noqa: E402


def call(method, url, timeout=600):
    request = urllib.request.Request(url, method=method)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read().decode()
        status = response.status
    return time.perf_counter() - started, status, body


def ready_workers(management, model):
    _, _, body = call("GET", f"{management}/models/{model}")
    return sum(w["status"] == "READY" for w in json.loads(body)[0]["workers"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="python3", help="the Python environment with torchserve 0.12")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--operations", type=int, default=3, help="register/scale/unregister timings per server")
    args = ap.parse_args()
    for needed in (SCANCER, HEY, DATA / "pcam-classification.pt"):
        if not needed.exists():
            sys.exit(f"missing {needed}: run `cargo xtask bench` and `cargo build --release` first")
    env = dict(os.environ, PATH=str(Path(args.python).parent) + os.pathsep + os.environ["PATH"])
    work = Path(tempfile.mkdtemp(prefix="scancer-store-bench-"))
    store = work / "store"
    store.mkdir()
    subprocess.run([SCANCER, "archive", "--model-name", "pcam", "--version", "1.0", "--serialized-file",
                    DATA / "pcam-classification.pt", "--config", DATA / "pcam-classification.toml",
                    "--export-path", store], check=True, capture_output=True)
    patch = sorted((DATA / "patches").glob("*.png"))[0]
    ports = {k: free_port() for k in ("ts-i", "ts-m", "ts-x", "sc-i", "sc-m", "sc-x")}
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['ts-i']}\n"
        f"management_address=http://127.0.0.1:{ports['ts-m']}\n"
        f"metrics_address=http://127.0.0.1:{ports['ts-x']}\n"
        "disable_token_authorization=true\nenable_model_api=true\n")
    ts_env = dict(env, LOG_LOCATION=str(work / "ts-logs"), METRICS_LOCATION=str(work / "ts-logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", store, "--ts-config",
                    work / "config.properties", "--disable-token-auth", "--enable-model-api"],
                   check=True, env=ts_env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    scancer = subprocess.Popen(
        [SCANCER, "serve", "--quiet", "--model-store", store, "--enable-model-api", "--disable-token-auth",
         "--ncs", "--no-grpc", "--batch-size", "1", "--port", str(ports["sc-i"]),
         "--management-port", str(ports["sc-m"]), "--metrics-port", str(ports["sc-x"])],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    servers = {
        "torchserve": (f"http://127.0.0.1:{ports['ts-i']}", f"http://127.0.0.1:{ports['ts-m']}"),
        "scancer": (f"http://127.0.0.1:{ports['sc-i']}", f"http://127.0.0.1:{ports['sc-m']}"),
    }
    operations = {name: {"register": [], "scale_up": [], "unregister": []} for name in servers}
    cells = {}
    try:
        for _, management in servers.values():
            wait_for(f"{management}/models", 300)
        # Register, scale from 1 to 2 workers, unregister: each timed, `--operations` times.
        for _ in range(args.operations):
            for name, (_, management) in servers.items():
                t, status, body = call("POST", f"{management}/models?url=pcam.mar&initial_workers=1&synchronous=true")
                assert status == 200, body
                operations[name]["register"].append(t)
                t, status, body = call("PUT", f"{management}/models/pcam?min_worker=2&max_worker=2&synchronous=true")
                assert status == 200, body
                operations[name]["scale_up"].append(t)
                t, status, body = call("DELETE", f"{management}/models/pcam")
                assert status == 200, body
                operations[name]["unregister"].append(t)
                # TorchServe stops workers after answering: let them go before the next round.
                time.sleep(2)
        for name, (_, management) in servers.items():
            call("POST", f"{management}/models?url=pcam.mar&initial_workers=1&synchronous=true")
        for workers in [int(w) for w in args.workers.split(",")]:
            for name, (_, management) in servers.items():
                _, status, body = call("PUT", f"{management}/models/pcam?min_worker={workers}&max_worker={workers}"
                                       "&synchronous=true")
                assert status == 200, body
                deadline = time.time() + 300
                while ready_workers(management, "pcam") != workers:
                    assert time.time() < deadline, f"{name}: {workers} workers never ready"
                    time.sleep(0.5)
            for clients in [int(c) for c in args.clients.split(",")]:
                for name, (inference, _) in servers.items():  # warm-up
                    hey(f"{inference}/predictions/pcam", patch, 2, clients)
                runs = {name: [] for name in servers}
                for r in range(args.repeats):
                    for name, (inference, _) in servers.items():
                        result = hey(f"{inference}/predictions/pcam", patch, args.seconds, clients)
                        runs[name].append(result)
                        print(f"{workers} workers, {clients} clients, round {r + 1} {name}: "
                              f"{result['rps']:.1f} req/s, p99 {result['p99_ms']:.1f} ms", file=sys.stderr)
                cells[f"{workers}x{clients}"] = {
                    name: {k: statistics.median(x[k] for x in runs[name]) for k in ("rps", "p50_ms", "p99_ms")}
                    for name in servers
                }
    finally:
        scancer.terminate()
        scancer.wait()
        subprocess.run(["torchserve", "--stop"], env=ts_env, cwd=work, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nbatch size 1, {args.seconds} s x {args.repeats} rounds a cell, body {patch.name}\n")
    print("| workers | clients | scancer req/s | scancer p99 ms | TorchServe req/s | TorchServe p99 ms | req/s ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for cell, s in cells.items():
        workers, clients = cell.split("x")
        sc, ts = s["scancer"], s["torchserve"]
        print(f"| {workers} | {clients} | {sc['rps']:.1f} | {sc['p99_ms']:.1f} | {ts['rps']:.1f} | "
              f"{ts['p99_ms']:.1f} | {sc['rps'] / ts['rps']:.1f}x |")
    print("\n| operation | scancer ms | TorchServe ms | ratio |")
    print("|---|---:|---:|---:|")
    medians = {name: {op: statistics.median(v) * 1e3 for op, v in ops.items()} for name, ops in operations.items()}
    for op in ("register", "scale_up", "unregister"):
        sc, ts = medians["scancer"][op], medians["torchserve"][op]
        print(f"| {op} | {sc:.1f} | {ts:.1f} | {ts / sc:.1f}x faster |")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "model_store.json").write_text(json.dumps({"cells": cells, "operations": operations}, indent=2))


if __name__ == "__main__":
    main()
