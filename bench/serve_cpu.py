#!/usr/bin/env python3
"""`scancer serve` at every load against the machine's forward+decode limit (issue 23; BENCHMARKS.md).

The full-width pcam archive (bench/data, made by `cargo xtask bench`) served by this build, by an
earlier one (`--before OLD/scancer`, with its libscancer_torch.so beside it) and, with `--python`, by
TorchServe 0.12 (two workers). `hey` on the same cores PUTs one 96x96 PNG for `--seconds` with 8, 32
and 128 keep-alive clients, round-robin over the servers, `--rounds` times. In the same run:
the forward-only rate (forward_bench, scancer's model path: one single-thread instance per core,
batch 16) and the decode-only rate (decode_bench, one thread), which give the forward+decode limit
1 / (1/forward + 1/(decode x cores)). Medians; the 8- and 128-client rows are read against the
32-client one.

    python3 bench/serve_cpu.py [--before OLD/scancer] [--python VENV/bin/python] [--rounds 2] [--seconds 8]
        [--log-files]
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
import serve as ts_bench  # noqa: E402  (hey, wait_for, free_port)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SCANCER = ROOT / "target" / "release" / "scancer"
FORWARD = ROOT / "target" / "release" / "examples" / "forward_bench"
DECODE = ROOT / "target" / "release" / "examples" / "decode_bench"


def limit(rounds):
    """(forward images/s, decode images/s on one thread, forward+decode limit)."""
    forward, decode = [], []
    for _ in range(rounds):
        out = subprocess.run([FORWARD, DATA / "pcam-classification.pt", "16", "4000"], check=True,
                             capture_output=True, text=True).stdout
        forward.append(json.loads(out)["images_per_s"])
        out = subprocess.run([DECODE, DATA / "pcam-classification.toml", DATA / "patches", "1"], check=True,
                             capture_output=True, text=True).stdout
        decode.append(json.loads(out)["images_per_s"])
    f, d = statistics.median(forward), statistics.median(decode)
    cores = os.cpu_count()
    return f, d, 1 / (1 / f + 1 / (d * cores))


def start_torchserve(python, work, mar):
    ports = {k: ts_bench.free_port() for k in ("inference", "management", "metrics")}
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['inference']}\n"
        f"management_address=http://127.0.0.1:{ports['management']}\n"
        f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
        "disable_token_authorization=true\ndefault_workers_per_model=2\n")
    env = dict(os.environ, PATH=str(Path(python).parent) + os.pathsep + os.environ["PATH"],
               LOG_LOCATION=str(work / "logs"), METRICS_LOCATION=str(work / "logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", mar.parent, "--ts-config",
                    work / "config.properties", "--models", f"pcam-classification={mar.name}",
                    "--disable-token-auth"], check=True, env=env, cwd=work,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            described = json.load(urllib.request.urlopen(
                f"http://127.0.0.1:{ports['management']}/models/pcam-classification"))
            if sum(w["status"] == "READY" for w in described[0]["workers"]) == 2:
                break
        except Exception:
            pass
        time.sleep(0.5)
    else:
        sys.exit("TorchServe workers did not get ready")
    stop = lambda: subprocess.run(["torchserve", "--stop"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{ports['inference']}/predictions/pcam-classification", stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="an earlier scancer binary (its engine beside it)")
    ap.add_argument("--python", help="a Python with torchserve 0.12, to run TorchServe beside")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--clients", default="8,32,128")
    ap.add_argument("--log-files", action="store_true",
                    help="LOG_LOCATION set for every scancer: this build writes TorchServe's log files "
                         "(access_log, ts_metrics, ...) as in production (issue 25)")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="scancer-serve-cpu-"))
    store = work / "store"
    store.mkdir()
    mar = ts_bench.pcam_archive(store)
    patch = sorted((DATA / "patches").glob("*.png"))[0]
    binaries = {"scancer (this build)": SCANCER}
    if args.before:
        binaries["scancer (before)"] = Path(args.before)
    servers, urls, stops = {}, {}, []
    try:
        for name, binary in binaries.items():
            port = ts_bench.free_port()
            env = dict(os.environ)
            if args.log_files:
                env["LOG_LOCATION"] = str(work / f"logs-{port}")
                env["METRICS_LOCATION"] = env["LOG_LOCATION"]
            servers[name] = subprocess.Popen([binary, "serve", "--quiet", "--port", str(port), "--no-grpc", mar],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            ts_bench.wait_for(f"http://127.0.0.1:{port}/ping")
            urls[name] = f"http://127.0.0.1:{port}/predictions/pcam-classification"
        if args.python:
            url, stop = start_torchserve(args.python, work, mar)
            stops.append(stop)
            urls["TorchServe 0.12 (2 workers)"] = url
        for url in urls.values():  # warm-up
            ts_bench.hey(url, patch, 2, 8)
        runs = {(name, c): [] for name in urls for c in clients}
        limits = []
        for r in range(args.rounds):
            limits.append(limit(1))
            for c in clients:
                for name, url in urls.items():
                    result = ts_bench.hey(url, patch, args.seconds, c, refusals=True)
                    runs[(name, c)].append(result)
                    print(f"round {r + 1}, {c} clients, {name}: {result['rps']:.0f} answers/s "
                          f"({result['refused_per_s']:.0f} 503/s), "
                          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms", file=sys.stderr)
    finally:
        ts_bench.stop_all(servers.values())
        for stop in stops:
            stop()
        shutil.rmtree(work, ignore_errors=True)

    forward = statistics.median(l[0] for l in limits)
    decode = statistics.median(l[1] for l in limits)
    fd = statistics.median(l[2] for l in limits)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("rps", "refused_per_s", "p50_ms", "p99_ms")}
           for k, v in runs.items()}
    print(f"\nfull-width pcam archive, one 96x96 PNG, {args.seconds} s x {args.rounds} rounds, medians; "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"forward only {forward:.0f} img/s, decode only {decode:.0f} img/s a thread, "
          f"forward+decode limit {fd:.0f} img/s ({os.cpu_count()} cores)\n")
    print("| server | clients | answers/s | 503/s | p50 ms | p99 ms | / its 32-client rate | / forward+decode limit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in urls:
        base = med.get((name, 32), {}).get("rps")
        for c in clients:
            m = med[(name, c)]
            rel = f"{m['rps'] / base:.2f}" if base else ""
            print(f"| {name} | {c} | {m['rps']:.0f} | {m['refused_per_s']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {rel} | "
                  f"{m['rps'] / fd:.2f} |")
    if args.before:
        for c in clients:
            print(f"- {c} clients: this build / before = "
                  f"{med[('scancer (this build)', c)]['rps'] / med[('scancer (before)', c)]['rps']:.2f}x")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "serve_cpu.json").write_text(json.dumps(
        {"limits": limits, "runs": {f"{k[0]} @ {k[1]}": v for k, v in runs.items()}}, indent=1))


if __name__ == "__main__":
    main()
