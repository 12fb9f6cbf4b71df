#!/usr/bin/env python3
"""Side-by-side benchmark of `scancer serve` and a real TorchServe 0.12 (see BENCHMARKS.md).

Both serve the same archive of the full-width pcam ModelCNN (bench/data, made by `cargo xtask bench`)
on loopback; `hey` (linked as .tools/hey by `cargo xtask bench`) runs 8 concurrent clients PUTting one
96x96 PNG for a fixed time, round-robin between the servers, `--repeats` times. Reports median
requests/s, p50 and p99 latency, and peak resident memory (the sum over TorchServe's Java frontend
and Python workers, sampled every 100 ms; scancer is one process). Needs torchserve==0.12.0,
torch-model-archiver and Java 17 for `--python`'s environment.

    python3 bench/serve.py --python /root/venv-torch/bin/python [--repeats 3] [--seconds 10]
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SCANCER = ROOT / "target" / "release" / "scancer"
HEY = ROOT / ".tools" / "hey"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=180):
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        if time.time() > deadline:
            sys.exit(f"{url} did not answer in {seconds} s")
        time.sleep(0.2)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root_pids):
    """Every process whose ancestry reaches one of root_pids (included)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found = set(root_pids)
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return found


class PeakMemory:
    """Samples the summed RSS of a process tree every 100 ms."""

    def __init__(self, roots):
        self.roots = roots
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            total = sum(rss_kib(p) for p in descendants(self.roots()))
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak / 1024


def percentile(sorted_values, q):
    """Nearest-rank percentile."""
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def hey(url, patch, seconds, clients, refusals=False):
    """200/s and the 200s' p50 and p99; with `refusals`, 503s are counted (as refused/s), not fatal."""
    # Per-request CSV: hey's own percentiles break down below a few hundred requests.
    out = subprocess.run([str(HEY), "-z", f"{seconds}s", "-c", str(clients), "-m", "PUT", "-D", str(patch),
                          "-T", "application/octet-stream", "-o", "csv", url],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split(",") for line in out.splitlines()[1:] if line]
    codes = {row[6] for row in rows}
    if not codes <= ({"200", "503"} if refusals else {"200"}) or "200" not in codes:
        sys.exit(f"unexpected answers from {url}: {codes}")
    answered = [row for row in rows if row[6] == "200"]
    latencies = sorted(float(row[0]) for row in answered)
    span = max(float(row[7]) + float(row[0]) for row in rows)
    return {
        "rps": len(answered) / span,
        "refused_per_s": (len(rows) - len(answered)) / span,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "requests": len(rows),
    }


def stop_all(processes):
    for process in processes:
        process.terminate()
        process.wait()


def pcam_archive(store):
    """The full-width pcam model of bench/data as a .mar in `store`."""
    subprocess.run([SCANCER, "archive", "--model-name", "pcam-classification", "--version", "1.0",
                    "--serialized-file", DATA / "pcam-classification.pt", "--config",
                    DATA / "pcam-classification.toml", "--export-path", store], check=True, capture_output=True)
    return store / "pcam-classification.mar"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default="python3", help="the Python environment with torchserve 0.12")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--torchserve-workers", type=int, default=2)
    args = ap.parse_args()
    for needed in (SCANCER, HEY, DATA / "pcam-classification.pt"):
        if not needed.exists():
            sys.exit(f"missing {needed}: run `cargo xtask bench` first")
    bin_dir = str(Path(args.python).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
    work = Path(tempfile.mkdtemp(prefix="scancer-serve-bench-"))
    store = work / "store"
    store.mkdir()
    mar = pcam_archive(store)
    patch = sorted((DATA / "patches").glob("*.png"))[0]

    ports = {k: free_port() for k in ("inference", "management", "metrics", "scancer", "scancer-b8")}
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['inference']}\n"
        f"management_address=http://127.0.0.1:{ports['management']}\n"
        f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
        f"disable_token_authorization=true\ndefault_workers_per_model={args.torchserve_workers}\n")
    ts_env = dict(env, LOG_LOCATION=str(work / "logs"), METRICS_LOCATION=str(work / "logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", store, "--ts-config",
                    work / "config.properties", "--models", "pcam-classification=pcam-classification.mar",
                    "--disable-token-auth"], check=True, env=ts_env, cwd=work,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # scancer's defaults (batches of 16, as `scancer predict`), and batches of 8 (one per client).
    scancers = {
        name: subprocess.Popen([SCANCER, "serve", "--quiet", "--port", str(ports[name]), "--no-grpc", mar, *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, extra in (("scancer", []), ("scancer-b8", ["--batch-size", "8"]))
    }
    try:
        # TorchServe's /ping says Healthy before workers load; wait for READY workers.
        deadline = time.time() + 300
        while True:
            try:
                described = json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{ports['management']}/models/pcam-classification"))
                if sum(w["status"] == "READY" for w in described[0]["workers"]) == args.torchserve_workers:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                sys.exit("TorchServe workers did not get ready")
            time.sleep(0.5)
        for name in scancers:
            wait_for(f"http://127.0.0.1:{ports[name]}/ping")
        urls = {"torchserve": f"http://127.0.0.1:{ports['inference']}/predictions/pcam-classification"}
        urls |= {name: f"http://127.0.0.1:{ports[name]}/predictions/pcam-classification" for name in scancers}
        body = patch.read_bytes()
        answers = {}
        for name, url in urls.items():
            request = urllib.request.Request(url, data=body, method="PUT",
                                             headers={"Content-Type": "application/octet-stream"})
            answers[name] = urllib.request.urlopen(request).read().decode()
        if len(set(answers.values())) != 1:
            sys.exit(f"the servers disagree: {answers}")

        java = subprocess.run(["pgrep", "-f", "org.pytorch.serve.ModelServer"], capture_output=True,
                              text=True).stdout.split()
        roots = {"torchserve": lambda: [int(p) for p in java]}
        roots |= {name: (lambda pid=process.pid: [pid]) for name, process in scancers.items()}
        for name, url in urls.items():  # warm-up
            hey(url, patch, 2, args.clients)
        runs = {name: [] for name in urls}
        peaks = {name: 0.0 for name in urls}
        for r in range(args.repeats):
            for name, url in urls.items():
                memory = PeakMemory(roots[name])
                result = hey(url, patch, args.seconds, args.clients)
                peaks[name] = max(peaks[name], memory.stop())
                runs[name].append(result)
                print(f"round {r + 1} {name}: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, "
                      f"p99 {result['p99_ms']:.1f} ms", file=sys.stderr)
    finally:
        stop_all(scancers.values())
        subprocess.run(["torchserve", "--stop"], env=ts_env, cwd=work, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    summary = {name: {k: statistics.median(r[k] for r in runs[name]) for k in ("rps", "p50_ms", "p99_ms")}
               | {"peak_rss_mib": peaks[name]} for name in runs}
    ts = summary["torchserve"]
    print(f"\n{args.clients} clients, {args.seconds} s x {args.repeats} rounds, body {patch.name} "
          f"({len(body)} B), answer {answers['scancer']!r} from every server\n")
    print("| server | req/s | p50 ms | p99 ms | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['rps']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['peak_rss_mib']:.0f} |")
    for name, s in summary.items():
        if name != "torchserve":
            print(f"| {name} / torchserve | {s['rps'] / ts['rps']:.1f}x | {s['p50_ms'] / ts['p50_ms']:.2f}x | "
                  f"{s['p99_ms'] / ts['p99_ms']:.2f}x | {s['peak_rss_mib'] / ts['peak_rss_mib']:.2f}x |")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "serve.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
