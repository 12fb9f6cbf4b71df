#!/usr/bin/env python3
"""The slide viewer's API under load (issue 28; see BENCHMARKS.md), loopback only.

1. Tiles: keep-alive connections (8 and 32; a browser opens 6 per server) fetch the
   Deep Zoom tiles of real slides (CMU-1-Small-Region and the two-level TCGA section through
   OpenSlide, the kidney TIFF from a pyramid in memory), every tile of the last four levels in a
   shuffled order: a cold pass (each tile drawn once, on a freshly started server) and a warm pass
   (the same tiles again, from the tile cache). p50 and p99 latency and tiles/s, per round. Beside
   it, the same tiles from openslide-python's DeepZoomGenerator behind Python's threading HTTP
   server (its examples/deepzoom server's work per tile, without a cache), in the same rounds.
2. /predictions with and without an analysis: `hey` PUTs a 96x96 patch with 8 and 32 clients for
   `--seconds`, first with the server idle, then while a long analysis of the CMU slide (stride 8,
   about 46,000 tissue windows, restarted should one finish) runs through the same model's workers.
   p50 and p99 of the 200s, requests/s, and the analysis' windows/s meanwhile (glass windows, which
   do not run, included).

    python3 bench/viewer.py [--binary target/release/scancer] [--repeats 3] [--seconds 8] [--model M]

Needs `cargo build --release --features openslide`, `cargo xtask setup` (slides, OpenSlide) and hey.
"""

import argparse
import csv
import http.client
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serve_load  # noqa: E402  (its Server)

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "pcam-classification.pt"
PATCH = ROOT / "examples" / "patches" / "patch-00.png"
SLIDES = [ROOT / ".tools" / n for n in ("cmu-small-region.svs", "tcga-cr-7395-01a-01-ts1.svs", "kidney-48-5.tif")]
CLIENTS_PYTHON = ROOT / ".tools" / "clients-venv" / "bin" / "python"


class PythonTiles:
    """openslide-python's DeepZoomGenerator behind Python's threading HTTP server, same paths."""

    def __init__(self, ids_and_paths):
        self.proc = subprocess.Popen([str(CLIENTS_PYTHON), str(ROOT / "bench" / "deepzoom_python_server.py"),
                                      *[f"{i}={p}" for i, p in ids_and_paths]], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Server(serve_load.Server):
    """`scancer serve MODEL --slides FOLDER`, on a fresh catalogue: an analysis an earlier server
    left running would be resumed, and would run beside what is measured."""

    def __init__(self, binary, folder, model):
        shutil.rmtree(Path(folder) / ".scancer", ignore_errors=True)
        os.environ["SCANCER_OPENSLIDE"] = str(ROOT / ".tools" / "libopenslide.so.1")
        super().__init__(binary, "--no-grpc", "--slides", str(folder), model=model)

    def get(self, path, method="GET", body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, body=body, headers={"content-type": "application/json"} if body else {})
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
        return data


def tile_paths(server):
    """Every tile of the last four Deep Zoom levels of every slide."""
    paths = []
    for slide in json.loads(server.get("/slides")):
        dzi = server.get(f"/slides/{slide['id']}.dzi").decode()
        w = int(re.search(r'Width="(\d+)"', dzi).group(1))
        h = int(re.search(r'Height="(\d+)"', dzi).group(1))
        last = max(w, h).bit_length() - (1 if max(w, h) & (max(w, h) - 1) == 0 else 0)
        for level in range(last - 3, last + 1):
            scale = 2 ** (last - level)
            lw, lh = -(-w // scale), -(-h // scale)
            for row in range(-(-lh // 254)):
                for col in range(-(-lw // 254)):
                    paths.append(f"/slides/{slide['id']}_files/{level}/{col}_{row}.jpeg")
    return paths


def fetch_all(port, paths, clients):
    """Every path once, split over `clients` keep-alive connections: latencies (s) and wall time."""
    shards = [paths[k::clients] for k in range(clients)]
    latencies = []
    lock = threading.Lock()

    def run(shard):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for path in shard:
            t = time.perf_counter()
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            mine.append(time.perf_counter() - t)
            if r.status != 200:
                raise SystemExit(f"{path}: {r.status}")
        c.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(s,)) for s in shards]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def hey(port, clients, seconds):
    out = subprocess.run([shutil.which("hey") or str(ROOT / ".tools" / "hey"), "-z", f"{seconds}s", "-c", str(clients),
                          "-m", "PUT", "-D", str(PATCH), "-o", "csv",
                          f"http://127.0.0.1:{port}/predictions/pcam-classification"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    ok = [float(r["response-time"]) for r in csv.DictReader(io.StringIO(out)) if r["status-code"] == "200"]
    other = sum(1 for r in csv.DictReader(io.StringIO(out)) if r["status-code"] != "200")
    return len(ok) / seconds, percentile(ok, 0.5) * 1e3, percentile(ok, 0.99) * 1e3, other


def record(results, key, latencies, wall, tiles, round_):
    row = results["tiles"].setdefault(key, [])
    row.append((percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3, tiles / wall))
    print(f"round {round_ + 1} tiles {key} clients: p50 {row[-1][0]:.1f} ms p99 {row[-1][1]:.1f} ms "
          f"{row[-1][2]:.0f} tiles/s ({tiles} tiles)", flush=True)


class Analyses:
    """Keeps one long analysis of the CMU slide running, and counts the windows it gets through."""

    def __init__(self, server, slide):
        self.server, self.slide = server, slide
        self.windows = 0
        self.stopping = False
        self.running = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            a = json.loads(self.server.get(f"/slides/{self.slide}/analyses", "POST",
                                           json.dumps({"model": "pcam-classification", "stride": 8})))
            done = 0
            while True:
                state = json.loads(self.server.get(f"/analyses/{a['id']}"))
                p = state.get("progress") or {}
                self.windows += p.get("windows_done", 0) - done
                done = p.get("windows_done", done)
                if done > 0:
                    self.running.set()
                if state["status"] not in ("queued", "running", "cancelling"):
                    break
                if self.stopping:
                    self.server.get(f"/analyses/{a['id']}", "DELETE")
                    return
                time.sleep(0.1)

    def stop(self):
        self.stopping = True
        self.thread.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "scancer"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--model", default=str(MODEL), help="the served model (bench/full_width_onnx.py makes the full-width one)")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="scancer-viewer-bench-"))
    for slide in SLIDES:
        shutil.copy(slide, folder / slide.name)
    results = {"tiles": {}, "predictions": {}}
    for round_ in range(args.repeats):
        for clients in (8, 32):
            server = Server(args.binary, folder, args.model)
            paths = tile_paths(server)
            random.Random(round_).shuffle(paths)
            names = {s["id"]: folder / s["name"] for s in json.loads(server.get("/slides"))}
            for phase in ("cold", "warm"):
                latencies, wall = fetch_all(server.port, paths, clients)
                record(results, f"scancer {phase} {clients}", latencies, wall, len(paths), round_)
            server.stop()
            python = PythonTiles(names.items())
            latencies, wall = fetch_all(python.port, paths, clients)
            record(results, f"openslide-python {clients}", latencies, wall, len(paths), round_)
            python.stop()
        server = Server(args.binary, folder, args.model)
        slides = {s["name"]: s["id"] for s in json.loads(server.get("/slides"))}
        for clients in (8, 32):
            for phase in ("idle", "analysing"):
                analyses = Analyses(server, slides["cmu-small-region.svs"]) if phase == "analysing" else None
                if analyses:
                    # Measured once the analysis is under way (an earlier one may still be ending).
                    if not analyses.running.wait(120):
                        sys.exit("the analysis did not start")
                    time.sleep(1.0)
                    before = analyses.windows
                rate, p50, p99, other = hey(server.port, clients, args.seconds)
                windows = (analyses.windows - before) / args.seconds if analyses else 0.0
                if analyses:
                    analyses.stop()
                row = results["predictions"].setdefault(f"{phase} {clients}", [])
                row.append((p50, p99, rate, windows, other))
                print(f"round {round_ + 1} predictions {phase} {clients} clients: p50 {p50:.1f} ms p99 {p99:.1f} ms "
                      f"{rate:.0f}/s, analysis {windows:.0f} windows/s, {other} not 200", flush=True)
        server.stop()
    print("\nmedians")
    for key, rows in results["tiles"].items():
        print(f"tiles {key}: p50 {statistics.median(r[0] for r in rows):.1f} ms, p99 {statistics.median(r[1] for r in rows):.1f} ms, "
              f"{statistics.median(r[2] for r in rows):.0f} tiles/s")
    for key, rows in results["predictions"].items():
        print(f"predictions {key}: p50 {statistics.median(r[0] for r in rows):.1f} ms, p99 {statistics.median(r[1] for r in rows):.1f} ms, "
              f"{statistics.median(r[2] for r in rows):.0f}/s, analysis {statistics.median(r[3] for r in rows):.0f} windows/s, "
              f"{sum(r[4] for r in rows)} not 200")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
