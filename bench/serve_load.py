#!/usr/bin/env python3
"""`scancer serve` under load (issue 14; see BENCHMARKS.md), loopback only, bounded in time.

1. Goodput: `hey` with 8, 32, 128 and 512 keep-alive clients PUTting one 96x96 PNG for `--seconds`,
   `--repeats` times round-robin over the competitors (this build, optionally `--before`, an earlier
   binary, and this build with `--queue-wait 0`, TorchServe's immediate 503). Reports the medians of
   200/s and 503/s, any other status, and the p99 of the accepted (200) requests, from hey's CSV.
2. Stalled heads: 2000 connections each send half a request head and wait; then 20 new clients in
   turn are timed, and the server's resident memory is read before and after.
3. HTTP/1.1 vs gRPC: the same Python load (`--procs` processes, each one connection, one request at a
   time) over HTTP/1.1 (http.client, keep-alive) and over gRPC (TorchServe's Predictions stub from
   proto/, and tritonclient's ModelInfer with BYTES), through the client venv of `cargo xtask setup`.

    python3 bench/serve_load.py [--before OLD/scancer] [--repeats 3] [--seconds 5]
"""

import argparse
import csv
import http.client
import io
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
PATCH = ROOT / "examples" / "patches" / "patch-00.png"
CLIENTS_PYTHON = ROOT / ".tools" / "clients-venv" / "bin" / "python"


class Server:
    """`scancer serve` on free ports; its HTTP and (when it has one) gRPC port from its log."""

    def __init__(self, binary, *flags, model=MODEL):
        self.proc = subprocess.Popen([str(binary), "serve", "-q", "--port", "0", *flags, str(model)],
                                     stderr=subprocess.PIPE, text=True)
        self.port = self.grpc = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            if m := re.search(r"listening on http://127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))
            if m := re.search(r"gRPC on 127\.0\.0\.1:(\d+)", line):
                self.grpc = int(m.group(1))
            if "try: curl" in line:
                break
        if self.port is None:
            sys.exit(f"{binary} serve did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def hey(port, clients, seconds):
    """(200/s, 503/s, other statuses, p99 ms of the 200s) of one hey run."""
    out = subprocess.run([shutil.which("hey") or "hey", "-z", f"{seconds}s", "-c", str(clients), "-m", "PUT",
                          "-D", str(PATCH), "-o", "csv", f"http://127.0.0.1:{port}/predictions/pcam-classification"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    ok, refused, other, latencies = 0, 0, {}, []
    for row in csv.DictReader(io.StringIO(out)):
        status = row["status-code"]
        if status == "200":
            ok += 1
            latencies.append(float(row["response-time"]) * 1e3)
        elif status == "503":
            refused += 1
        else:
            other[status] = other.get(status, 0) + 1
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    return ok / seconds, refused / seconds, other, p99


def goodput(competitors, repeats, seconds):
    results = {}
    for r in range(repeats):
        for name, (binary, flags) in (competitors if r % 2 == 0 else competitors[::-1]):
            server = Server(binary, *flags)
            try:
                for clients in (8, 32, 128, 512):
                    results.setdefault((name, clients), []).append(hey(server.port, clients, seconds))
            finally:
                server.stop()
        print(f"goodput round {r + 1}/{repeats} done", file=sys.stderr, flush=True)
    print(f"\n### Goodput ({repeats} runs of {seconds} s each, medians)\n")
    print("| server | clients | 200/s | 503/s | other | p99 of 200s (ms) | goodput / best |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for name, _ in competitors:
        rows = {c: results[(name, c)] for c in (8, 32, 128, 512)}
        med = {c: statistics.median(x[0] for x in rows[c]) for c in rows}
        best = max(med.values())
        for c, runs in rows.items():
            other = {}
            for x in runs:
                for k, v in x[2].items():
                    other[k] = other.get(k, 0) + v
            print(f"| {name} | {c} | {med[c]:.0f} | {statistics.median(x[1] for x in runs):.0f} | "
                  f"{other or '-'} | {statistics.median(x[3] for x in runs):.1f} | {med[c] / best:.0%} |")


def stalled_heads(binary, n=2000):
    server = Server(binary, "--no-grpc")
    body = PATCH.read_bytes()
    request = (f"PUT /predictions/pcam-classification HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
               f"\r\n").encode() + body

    def answered():
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
            started = time.perf_counter()
            s.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += s.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
            return (time.perf_counter() - started) * 1e3

    try:
        for _ in range(5):
            answered()
        before = server.rss_mib()
        stalled = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"PUT /predictions/pcam-classification HTTP/1.1\r\nhost: x\r\n")
            stalled.append(s)
        time.sleep(0.5)  # let the server take them all in
        times = [answered() for _ in range(20)]
        after = server.rss_mib()
        print(f"\n### {n} connections stalled mid-head\n")
        print(f"- a new client, 20 in turn: median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms (all 200)")
        print(f"- resident memory {before:.0f} MiB before, {after:.0f} MiB with them "
              f"({(after - before) * 1024 / n:.1f} KiB each)")
        for s in stalled:
            s.close()
    finally:
        server.stop()


GRPC_LOAD = r'''
import sys, time, http.client, tempfile, subprocess
mode, port, seconds, patch, proto = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
image = open(patch, "rb").read()
if mode == "http":
    c = http.client.HTTPConnection("127.0.0.1", port)
    def call():
        c.request("PUT", "/predictions/pcam-classification", body=image)
        r = c.getresponse(); r.read(); assert r.status == 200
elif mode == "torchserve-grpc":
    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{proto}", f"--python_out={out}",
                    f"--grpc_python_out={out}", f"{proto}/torchserve_inference.proto"], check=True)
    sys.path.insert(0, out)
    import grpc, torchserve_inference_pb2 as ts, torchserve_inference_pb2_grpc as ts_grpc
    stub = ts_grpc.InferenceAPIsServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
    request = ts.PredictionsRequest(model_name="pcam-classification", input={"data": image})
    def call():
        stub.Predictions(request)
else:
    import numpy as np, tritonclient.grpc as g
    client = g.InferenceServerClient(f"127.0.0.1:{port}")
    tensor = g.InferInput("input__0", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([image], dtype=np.object_))
    def call():
        client.infer("pcam-classification", [tensor])
call()
n, end = 0, time.perf_counter() + seconds
while time.perf_counter() < end:
    call(); n += 1
print(n / seconds)
'''


def protocols(binary, procs, seconds, repeats):
    if not CLIENTS_PYTHON.exists():
        print("\n(no client venv: run `cargo xtask setup` for the HTTP/1.1 vs gRPC comparison)")
        return
    server = Server(binary, "--grpc-port", "0")
    results = {}
    try:
        for r in range(repeats):
            for mode in ("http", "torchserve-grpc", "kserve-grpc"):
                port = server.port if mode == "http" else server.grpc
                runs = [subprocess.Popen([str(CLIENTS_PYTHON), "-c", GRPC_LOAD, mode, str(port), str(seconds),
                                          str(PATCH), str(ROOT / "proto")], stdout=subprocess.PIPE, text=True)
                        for _ in range(procs)]
                results.setdefault(mode, []).append(sum(float(p.communicate()[0]) for p in runs))
    finally:
        server.stop()
    print(f"\n### HTTP/1.1 vs gRPC: {procs} Python clients, one call at a time each, {repeats} runs, medians\n")
    print("| protocol | answers/s | vs HTTP/1.1 |")
    print("|---|---:|---:|")
    http_rate = statistics.median(results["http"])
    for mode, rates in results.items():
        print(f"| {mode} | {statistics.median(rates):.0f} | {statistics.median(rates) / http_rate:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--after", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--before", help="an earlier scancer binary (thread per connection)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--only", choices=["goodput", "stalled", "protocols"])
    args = ap.parse_args()
    competitors = [("scancer", (args.after, ["--no-grpc"])),
                   ("scancer --queue-wait 0", (args.after, ["--no-grpc", "--queue-wait", "0"]))]
    if args.before:
        competitors.append(("before", (args.before, [])))
    if args.only in (None, "goodput"):
        goodput(competitors, args.repeats, args.seconds)
    if args.only in (None, "stalled"):
        stalled_heads(args.after)
    if args.only in (None, "protocols"):
        protocols(args.after, args.procs, args.seconds, args.repeats)


if __name__ == "__main__":
    main()
