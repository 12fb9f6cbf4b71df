#!/usr/bin/env python3
"""Soak test of `scancer serve` (see RELIABILITY.md): bounded in time, loopback only.

Serves the full-width pcam model (bench/data, made by `cargo xtask bench`), measures its unloaded p99
(one client) and its capacity (8 hey clients), then for `--minutes` offers twice that capacity with
hey (32 rate-limited keep-alive clients PUTting a patch) while bad clients send garbage, broken
requests and wrong credentials, and slow clients trickle their headers. It samples RSS and open file
descriptors every 5 s, then stops the server with SIGTERM in the middle of a burst. Checks:
- every request is answered: 200, or 503 when the queue is full, and no other 5xx;
- RSS after warm-up stays within 10 % of its value at the end of warm-up;
- the p99 of the good clients' successful answers is under 3x the unloaded p99;
- no file descriptor leak (the count after the load returns to the count before it);
- SIGTERM during load exits 0.

    python3 bench/soak.py [--minutes 10] [--queue 8]
"""

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import DATA, HEY, SCANCER, free_port, hey, percentile, wait_for  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def bad_clients(port, stop, counts):
    """Garbage bodies, broken requests and unknown paths, about 20 a second."""
    requests = [
        b"PUT /predictions/pcam-classification HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
        b"\x16\x03\x01\x00\x05hello\r\n\r\n",
        b"PUT /predictions/pcam-classification HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx",
        b"POST /predictions/pcam-classification HTTP/1.1\r\ncontent-type: multipart/form-data; boundary=B\r\n"
        b"content-length: 9\r\n\r\n--B\r\nxxxx",
        b"GET /nowhere HTTP/1.1\r\n\r\n",
        b"DELETE /models/pcam-classification HTTP/1.1\r\n\r\n",
    ]
    k = 0
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(requests[k % len(requests)])
                status = s.recv(64).split(b" ")[1].decode()
                counts[status] = counts.get(status, 0) + 1
        except OSError as e:
            counts[f"error {type(e).__name__}"] = counts.get(f"error {type(e).__name__}", 0) + 1
        k += 1
        time.sleep(0.05)


def slow_clients(port, stop, counts):
    """Headers one byte every half second, until the server gives up on them."""
    head = b"PUT /predictions/pcam-classification HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                for byte in head:
                    if stop.is_set():
                        break
                    s.sendall(bytes([byte]))
                    time.sleep(0.5)
                status = s.recv(64).split(b" ")[1].decode() if not stop.is_set() else "stopped"
                counts[f"slow {status}"] = counts.get(f"slow {status}", 0) + 1
        except OSError as e:
            # BrokenPipe/ConnectionReset: the server answered 408 and closed, as it should.
            counts[f"slow {type(e).__name__}"] = counts.get(f"slow {type(e).__name__}", 0) + 1


def unloaded_p99(port, body, n=300):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        connection.request("PUT", "/predictions/pcam-classification", body=body)
        response = connection.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        assert response.status == 200
    return percentile(sorted(times), 99) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--queue", type=int, default=8)
    ap.add_argument("--queue-wait", type=int, help="serve's --queue-wait in ms (default: serve's)")
    args = ap.parse_args()
    patch = sorted((DATA / "patches").glob("*.png"))[0]
    body = patch.read_bytes()
    port = free_port()
    server = subprocess.Popen([SCANCER, "serve", "--quiet", "--port", str(port), "--job-queue-size", str(args.queue),
                               "--client-timeout", "5", "--head-timeout", "5", "--no-grpc",
                               *(["--queue-wait", str(args.queue_wait)] if args.queue_wait is not None else []),
                               DATA / "pcam-classification.pt"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/predictions/pcam-classification"
    wait_for(f"http://127.0.0.1:{port}/ping")
    base_p99 = unloaded_p99(port, body)
    capacity = hey(url, patch, 10, 8)["rps"]
    fds_before = fds(server.pid)
    print(f"unloaded p99 {base_p99:.1f} ms, capacity {capacity:.0f} req/s, {fds_before} fds", file=sys.stderr)

    stop = threading.Event()
    counts = {}
    threads = [threading.Thread(target=bad_clients, args=(port, stop, counts)) for _ in range(2)]
    threads += [threading.Thread(target=slow_clients, args=(port, stop, counts)) for _ in range(4)]
    for t in threads:
        t.start()
    seconds = int(args.minutes * 60)
    clients = 32
    per_client = 2 * capacity / clients
    # hey's CSV goes to a file: a pipe would fill up and block it.
    csv_path = DATA / "soak.csv"
    with open(csv_path, "w") as csv_file:
        load = subprocess.Popen([HEY, "-z", f"{seconds}s", "-c", str(clients), "-q", f"{per_client:.2f}", "-m",
                                 "PUT", "-D", patch, "-T", "application/octet-stream", "-o", "csv", url],
                                stdout=csv_file)
        samples = []
        started = time.time()
        while load.poll() is None:
            samples.append((time.time() - started, rss_mib(server.pid), fds(server.pid)))
            time.sleep(5)
    out = csv_path.read_text()
    stop.set()
    for t in threads:
        t.join()
    time.sleep(6)  # the client timeout, for the last slow connections to close
    fds_after = fds(server.pid)

    rows = [line.split(",") for line in out.splitlines()[1:] if line]
    statuses = {}
    for row in rows:
        statuses[row[6]] = statuses.get(row[6], 0) + 1
    ok_times = sorted(float(r[0]) for r in rows if r[6] == "200")
    loaded_p99 = percentile(ok_times, 99) * 1e3
    warm = [rss for t, rss, _ in samples if t >= 60]
    rss_warm = warm[0] if warm else samples[-1][1]
    rss_max = max(warm) if warm else rss_warm

    # SIGTERM in the middle of a burst.
    burst = subprocess.Popen([HEY, "-z", "5s", "-c", "16", "-m", "PUT", "-D", patch, "-T", "application/octet-stream",
                              url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        code = "did not stop within 60 s"
    burst.wait()

    other_5xx = {s: n for s, n in statuses.items() if s.startswith("5") and s != "503"}
    checks = {
        "only 200 and 503 for good clients": set(statuses) <= {"200", "503"} and not other_5xx,
        "RSS within 10 % after warm-up": rss_max <= rss_warm * 1.10,
        "good p99 under 3x unloaded": loaded_p99 < 3 * base_p99,
        "no fd leak": fds_after <= fds_before,
        "SIGTERM under load exits 0": code == 0,
    }
    print(f"\n{args.minutes:g} min at 2x capacity ({2 * capacity:.0f} req/s offered by {clients} hey clients), "
          f"queue {args.queue}, plus 2 bad and 4 slow clients\n")
    print(f"- good clients: {len(rows)} requests, statuses {dict(sorted(statuses.items()))}, "
          f"{len(ok_times) / seconds:.0f} answered 200/s")
    print(f"- p99 of successful answers {loaded_p99:.1f} ms (unloaded {base_p99:.1f} ms, "
          f"ratio {loaded_p99 / base_p99:.2f}); median {statistics.median(ok_times) * 1e3:.1f} ms")
    print(f"- bad and slow clients: {dict(sorted(counts.items()))}")
    print(f"- RSS {samples[0][1]:.0f} MiB at start, {rss_warm:.0f} MiB after warm-up, max {rss_max:.0f} MiB after")
    print(f"- fds {fds_before} before the load, max {max(f for _, _, f in samples)} during, {fds_after} after")
    print(f"- SIGTERM during a 16-client burst: exit {code}")
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'MISS'} {name}")


if __name__ == "__main__":
    main()
