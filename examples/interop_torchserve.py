#!/usr/bin/env python3
"""Interoperability with a real TorchServe 0.12 (developer script; not run by the tests or CI).

Needs, in the Python that runs it: torch 2.13, torchvision, torchserve==0.12.0,
torch-model-archiver==0.12.0 and captum (pip), and Java 17. Builds archives with `scancer archive`,
serves them on a real TorchServe bound to 127.0.0.1 on free ports, sends every test image, and checks
TorchServe's answers against `scancer predict` for the same images; serves the same archives on
`scancer serve` and sends both servers the same requests, which must get identical status codes and
bodies on every endpoint they share; then feeds torch-model-archiver's own archives (testdata/mar) to
`scancer predict`; drives a TorchServe with `scancer store` and `predict --remote`; and runs one
model-store workflow (register from the store and from an http URL, describe, scale, versions,
set-default, unregister, the listeners' 404s, then tokens) live on a TorchServe and on `scancer serve
--model-store`, both started empty, comparing status and body request by request. Prints a summary;
exits 1 on any mismatch (answers that differ on purpose, README "Differences from TorchServe", are
shown and not counted).

    python examples/interop_torchserve.py [--scancer target/release/scancer] [--only-store]

`--only-store` runs only the live model-store workflow; `--only-observability` only the comparison
of what operators watch (issue 25): the metric families TorchServe 0.12 exports in Prometheus mode
(names, types, label names, `model_version="default"`), its five log files line by line against the
shapes of TorchServe's own lines, and one Prometheus server scraping both with the same queries
(`prometheus` from .tools/ or PATH); `--only-formats` only scancer's archives of ONNX models and of an
AOTInductor package on TorchServe against `scancer serve` and `predict` (issue 26; needs onnxruntime
1.32 beside torch). `torchserve` is looked for beside the Python that runs the
script first, then on PATH.
"""

import re

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record_torchserve_store import FileServer, KeyFile, TorchServe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scancer_records(scancer, model, images, *extra):
    out = subprocess.run([scancer, "predict", "-q", "-f", "jsonl", "-m", model, *extra, *images],
                         capture_output=True, text=True)
    return {r["path"]: r for r in map(json.loads, out.stdout.splitlines())}


def exchange(port, method, path, body=b"", headers=None, timeout=60):
    """One request; the status and the body as sent, whatever the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = (response.status, response.read())
    connection.close()
    return answer


def wait_answering(port, path, what="scancer serve", timeout=60):
    """Polls GET path on port until it answers 200, or exits after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        try:
            if exchange(port, "GET", path, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(f"{what} did not start")
        time.sleep(0.2)


def metric_values(port):
    """{(name, model, version): value} of TorchServe's per-model counters."""
    text = exchange(port, "GET", "/metrics")[1].decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("ts_inference_requests_total{"):
            labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(",") if kv)
            values[(labels["model_name"], labels["model_version"])] = float(line.rsplit(" ", 1)[1])
    return values


def compare_servers(scancer, store, ports):
    """The same requests to TorchServe and to `scancer serve` on the same archives."""
    port = free_port()
    # TorchServe runs the graph as saved, one request per batch: so does scancer here, which makes
    # even the float bodies of the multiclass model comparable byte for byte. No gRPC: TorchServe
    # holds 7070, the default of both.
    server = subprocess.Popen([scancer, "serve", "--quiet", "--port", str(port), "--no-optimize", "--no-grpc",
                               "--batch-size", "1", store / "pcam.mar", store / "tissue.mar",
                               f"classifier={store / 'classifier.mar'}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    counted_before = metric_values(ports["metrics"])
    try:
        wait_answering(port, "/ping")
        png = (ROOT / "examples/patches/patch-00.png").read_bytes()
        boundary = "interop-boundary"
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"p.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
        raw = {"Content-Type": "application/octet-stream"}
        inference = [("GET", "/ping", b"", {})]
        for image in sorted((ROOT / "examples/patches").glob("*.png")):
            inference.append(("PUT", "/predictions/pcam", image.read_bytes(), raw))
        for image in ["testdata/images/tall-130x160.png", "testdata/images/wide-203x80.png",
                      "testdata/images/patch.jpg", "examples/patches/patch-05.png"]:
            inference.append(("PUT", "/predictions/tissue", (ROOT / image).read_bytes(), raw))
        inference += [
            ("PUT", "/predictions/pcam/1.0", png, raw),
            ("POST", "/predictions/pcam", form, {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
            ("PUT", "/predictions/nope", png, raw),
            ("PUT", "/predictions/pcam/9.9", png, raw),
            ("GET", "/nowhere", b"", {}),
            ("GET", "/", b"", {}),
        ]
        management = [
            ("GET", "/models", b"", {}),
            ("GET", "/models?limit=1", b"", {}),
            ("GET", "/models?limit=1&next_page_token=1", b"", {}),
            ("GET", "/models/nope", b"", {}),
            ("GET", "/models/pcam/9.9", b"", {}),
            ("DELETE", "/models/pcam", b"", {}),
            ("POST", "/models?url=pcam.mar", b"", {}),
        ]
        for torchserve_port, requests in ((ports["inference"], inference), (ports["management"], management)):
            for method, path, body, headers in requests:
                theirs = exchange(torchserve_port, method, path, body, headers)
                ours = exchange(port, method, path, body, headers)
                ok = theirs == ours
                print(f"{'ok  ' if ok else 'FAIL'} serve {method} {path}: TorchServe {theirs[0]} {theirs[1][:60]!r}"
                      + ("" if ok else f", scancer {ours[0]} {ours[1][:60]!r}"))
                if not ok:
                    failures.append(("serve", method, path))
        # Explanations of the built-in image_classifier archive: TorchServe's Captum Integrated
        # Gradients and scancer's, the same [C][H][W] body, values within 1e-4 (floating-point sums
        # in another order differ in the last digits, so the bodies are compared as numbers).
        def flat(value):
            return [x for item in value for x in flat(item)] if isinstance(value, list) else [value]

        def shape(value):
            return [len(value)] + shape(value[0]) if isinstance(value, list) else []

        for image in ["examples/patches/patch-05.png", "testdata/images/wide-203x80.png"]:
            body = (ROOT / image).read_bytes()
            theirs = exchange(ports["inference"], "PUT", "/explanations/classifier", body, raw)
            ours = exchange(port, "PUT", "/explanations/classifier", body, raw)
            same = theirs[0] == ours[0] == 200
            detail = f"TorchServe {theirs[0]}, scancer {ours[0]}"
            if same:
                t, o = json.loads(theirs[1]), json.loads(ours[1])
                worst = max(abs(a - b) for a, b in zip(flat(t), flat(o)))
                same = shape(t) == shape(o) and worst <= 1e-4
                detail = f"shape {shape(t)} and {shape(o)}, largest difference {worst:.1e}"
            print(f"{'ok  ' if same else 'FAIL'} serve PUT /explanations/classifier {image}: {detail}")
            if not same:
                failures.append(("serve", "explanations", image))
        # Descriptions: the same keys in the same order (values such as pids and times differ).
        theirs = json.loads(exchange(ports["management"], "GET", "/models/pcam")[1])
        ours = json.loads(exchange(port, "GET", "/models/pcam")[1])
        same_keys = [list(theirs[0])] == [list(ours[0])] and list(theirs[0]["workers"][0]) == list(ours[0]["workers"][0])
        print(f"{'ok  ' if same_keys else 'FAIL'} serve GET /models/pcam: the same fields")
        if not same_keys:
            failures.append(("serve", "describe"))
        # Metrics: the same answered-request counts per model. TorchServe splits a model into a
        # "default" series (no version named) and versioned ones; scancer keeps one series per
        # version that answered, so the totals per model are what compare.
        def per_model(values):
            totals = {}
            for (model, _version), v in values.items():
                totals[model] = totals.get(model, 0.0) + v
            return {k: v for k, v in totals.items() if v}

        theirs = {k: v - counted_before.get(k, 0.0) for k, v in metric_values(ports["metrics"]).items()}
        theirs = per_model(theirs)
        ours = per_model(metric_values(port))
        ok = theirs == ours
        print(f"{'ok  ' if ok else 'FAIL'} serve /metrics ts_inference_requests_total: TorchServe {theirs}, scancer {ours}")
        if not ok:
            failures.append(("serve", "metrics"))
    finally:
        server.terminate()
        server.wait()
    return failures


def store_checks(scancer, store, work):
    """`scancer store` and `predict --remote` driving a real TorchServe with the model API on, token
    auth off and then on."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from record_torchserve_fixtures import TorchServe

    failures = []
    subprocess.run([scancer, "archive", "--model-name", "pcam", "--version", "2.0", "--serialized-file",
                    ROOT / "examples/pcam-classification.pt", "--config", ROOT / "examples/pcam-classification.toml",
                    "--export-path", work, "-f"], check=True, capture_output=True)
    shutil.move(work / "pcam.mar", store / "pcam-2.0.mar")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANCER_")}
    images = sorted(str(p) for p in (ROOT / "examples/patches").glob("*.png"))
    local = scancer_records(scancer, str(ROOT / "examples/pcam-classification.pt"), images)

    def check(name, command, want_code=0, needle="", token_file=None):
        full = [scancer, *command[:1], *command[1:]]
        if token_file:
            full[2:2] = ["--token-file", str(token_file)]
        out = subprocess.run(full, capture_output=True, text=True, env=env)
        ok = out.returncode == want_code and needle in out.stdout + out.stderr
        print(f"{'ok  ' if ok else 'FAIL'} store {name}: exit {out.returncode}"
              + ("" if ok else f"\n{out.stdout}{out.stderr}"))
        if not ok:
            failures.append(("store", name))
        return out

    for token_auth in (False, True):
        ts = TorchServe(work, store, model_api=True, token_auth=token_auth)
        label = "token auth on" if token_auth else "token auth off"
        keys = ts.work / "key_file.json" if token_auth else None
        management = f"http://127.0.0.1:{ts.ports['management']}"
        inference = f"http://127.0.0.1:{ts.ports['inference']}"
        s = ["store", "--url", management]
        try:
            if token_auth:
                check(f"{label}: list without a token", [*s, "list"], 1, "pass --token")
            check(f"{label}: register --wait", [*s, "register", "pcam.mar", "--initial-workers", "1", "--wait"],
                  0, "pcam: 1 worker(s) READY", keys)
            check(f"{label}: scale --wait", [*s, "scale", "pcam", "--min-workers", "2", "--max-workers", "2",
                                               "--wait"], 0, "2 worker(s) READY", keys)
            out = check(f"{label}: describe", [*s, "describe", "pcam", "--json"], 0, '"modelVersion": "1.0"', keys)
            try:
                ready = sum(w["status"] == "READY" for w in json.loads(out.stdout)[0]["workers"])
            except ValueError:
                ready = 0
            if ready != 2:
                failures.append(("store", f"{label}: {ready} READY workers after scale --wait"))
            check(f"{label}: register version 2.0", [*s, "register", "pcam-2.0.mar", "--initial-workers", "1",
                                                      "--synchronous"], 0, "Version: 2.0", keys)
            check(f"{label}: set-default", [*s, "set-default", "pcam", "2.0"], 0, "to \"2.0\"", keys)
            check(f"{label}: describe the default", [*s, "describe", "pcam"], 0, "pcam 2.0", keys)
            check(f"{label}: unregister 1.0", [*s, "unregister", "pcam", "--version", "1.0"], 0, "unregistered",
                  keys)
            check(f"{label}: list", [*s, "list"], 0, "pcam-2.0.mar", keys)
            remote = ["predict", "--remote", inference, "-m", "pcam", "-f", "jsonl", "-q"]
            if token_auth:
                check(f"{label}: predict --remote without a token", [*remote, *images], 2, "inference token")
                remote += ["--token-file", str(keys)]
            out = check(f"{label}: predict --remote", [*remote, *images], 0)
            records = [json.loads(line) for line in out.stdout.splitlines()]
            same = [r["class"] for r in records] == [local[i]["class"] for i in images]
            print(f"{'ok  ' if same else 'FAIL'} store {label}: remote classes equal local ones ({len(records)} images)")
            if not same:
                failures.append(("store", f"{label}: remote classes"))
            check(f"{label}: unregister", [*s, "unregister", "pcam"], 0, "unregistered", keys)
        finally:
            ts.stop()
    return failures


class ScancerStore(KeyFile):
    """`scancer serve --model-store` in its own work dir (its cwd, where it writes key_file.json, and
    LOG_LOCATION), with TorchServe's defaults (batches of 1 within 100 ms) and the interface of
    record_torchserve_store.TorchServe (ports, start, read_keys, bearer, stop)."""

    def __init__(self, scancer, work, name, store, *, token_auth, allowed_urls):
        self.work = work / name
        self.work.mkdir()
        self.ports = {k: free_port() for k in ("inference", "management", "metrics")}
        self.token_auth = token_auth
        # --no-optimize: the graph as saved, TorchServe's way of running it (see compare_servers).
        self.command = [str(Path(scancer).resolve()), "serve", "--model-store", str(store), "--enable-model-api",
                        "--ncs", "--no-grpc", "--batch-size", "1", "--max-batch-delay", "100", "--no-optimize",
                        "--port", str(self.ports["inference"]), "--management-port", str(self.ports["management"]),
                        "--metrics-port", str(self.ports["metrics"]), "--allowed-urls", allowed_urls]
        if not token_auth:
            self.command.append("--disable-token-auth")
        self.env = dict({k: v for k, v in os.environ.items() if not k.startswith("SCANCER_")},
                        LOG_LOCATION=str(self.work / "logs"), METRICS_LOCATION=str(self.work / "logs"))
        self.process = None
        self.keys = None

    def start(self):
        with open(self.work / "scancer.log", "wb") as log:
            self.process = subprocess.Popen(self.command, cwd=self.work, env=self.env, stdout=log, stderr=log)
        deadline = time.time() + 120
        while True:
            if self.process.poll() is not None:
                sys.exit(f"scancer serve exited with {self.process.returncode}; see {self.work / 'scancer.log'}")
            try:
                headers = self.bearer("management") if self.token_auth and self.read_keys() else {}
                if exchange(self.ports["management"], "GET", "/models", headers=headers, timeout=10)[0] == 200:
                    return self
            except (OSError, ValueError, KeyError):
                pass
            if time.time() > deadline:
                sys.exit(f"scancer serve did not start; see {self.work / 'scancer.log'}")
            time.sleep(0.2)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Requests of the workflow below that scancer answers otherwise on purpose (README, "Differences from
# TorchServe"), and why: shown, not counted as mismatches. Status and body only are compared, so the
# predictions' Content-Type (the documented difference those requests have) is not one of them.
ON_PURPOSE = {
    "register-url-not-allowed": "URLs need allowed_urls; TorchServe's default allows any (CVE-2023-43654)",
    "scale-negative": "negative workers are a 400; TorchServe fails with a 500 IndexOutOfBoundsException",
    "token-substring-in-query": "/token is only the /token path; TorchServe takes any request containing /token",
}
# What describe answers may differ in: each worker's own id, start time, pid and memory.
OWN_WORKER_FIELDS = ("id", "startTime", "pid", "memoryUsage")


def description_differences(theirs, ours):
    """Field by field, what differs between two describe answers (decoded JSON)."""
    if not (isinstance(theirs, list) and isinstance(ours, list)) or len(theirs) != len(ours):
        return [f"{len(theirs) if isinstance(theirs, list) else theirs!r} / "
                f"{len(ours) if isinstance(ours, list) else ours!r} versions"]
    found = []
    for t, o in zip(theirs, ours):
        if list(t) != list(o):
            found.append(f"fields {list(t)} / {list(o)}")
        for key, value in t.items():
            if key != "workers":
                if value != o.get(key):
                    found.append(f"{key}: {value!r} / {o.get(key)!r}")
                continue
            if len(value) != len(o.get(key, [])):
                found.append(f"{len(value)} / {len(o.get(key, []))} workers")
            for a, b in zip(value, o.get(key, [])):
                if list(a) != list(b):
                    found.append(f"worker fields {list(a)} / {list(b)}")
                found += [f"worker {k}: {a[k]!r} / {b.get(k)!r}" for k in a
                          if k not in OWN_WORKER_FIELDS and a[k] != b.get(k)]
    return found


def wait_all_ready(servers, model, timeout=300):
    """Until every worker of `model` is READY on each server (describe answers while workers start
    would differ only in timing)."""
    for server in servers:
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = exchange(server.ports["management"], "GET", f"/models/{model}",
                                    headers=server.bearer("management"))
            if status == 200 and all(w["status"] == "READY" for v in json.loads(body) for w in v["workers"]):
                break
            time.sleep(0.5)
        else:
            print(f"warning: {model} not all READY on {type(server).__name__} after {timeout} s")


def store_workflow(scancer, work):
    """One model-store workflow live on a real TorchServe 0.12 and on `scancer serve --model-store`,
    both started empty on their own free loopback ports from copies of one store folder, model API on:
    the same request to both, status and body compared request by request (describe answers field by
    field). Token auth off, then a second pair with token auth on for the key checks."""
    live = work / "live"
    source = live / "store"
    source.mkdir(parents=True)
    for version, name in (("1.0", "pcam.mar"), ("2.0", "pcam-2.0.mar")):
        export = live / f"v{version}"
        export.mkdir()
        subprocess.run([scancer, "archive", "--model-name", "pcam", "--version", version, "--serialized-file",
                        ROOT / "examples/pcam-classification.pt", "--config", ROOT / "examples/pcam-classification.toml",
                        "--export-path", export, "-f"], check=True, capture_output=True)
        shutil.move(export / "pcam.mar", source / name)
    (live / "www" / "files").mkdir(parents=True)
    shutil.copy(source / "pcam.mar", live / "www" / "files" / "pcamurl.mar")
    files = FileServer(live / "www")
    url = f"{files.url}/files/pcamurl.mar"
    png = (ROOT / "examples/patches/patch-00.png").read_bytes()
    raw = {"Content-Type": "application/octet-stream"}
    tally = {"same": 0, "on purpose": 0, "different": 0}
    failures = []

    def pair(name, token_auth):
        """A TorchServe and a scancer, each on its own copy of the store, started one after the other."""
        stores = [live / f"{name}-{kind}-store" for kind in ("torchserve", "scancer")]
        for store in stores:
            shutil.copytree(source, store)
        config = ["enable_model_api=true"] + ([] if token_auth else ["disable_token_authorization=true"])
        ts = TorchServe(live, f"{name}-torchserve", stores[0], config=config)
        sc = ScancerStore(scancer, live, f"{name}-scancer", stores[1], token_auth=token_auth,
                          allowed_urls=f"{files.url}/.*")
        return (ts, sc), stores

    def outcome(label, same, shown, theirs=None, ours=None, details=()):
        if same:
            tally["same"] += 1
            print(f"same               {label}: {shown}")
        elif label in ON_PURPOSE:
            tally["on purpose"] += 1
            print(f"differs on purpose {label}: {shown} ({ON_PURPOSE[label]})")
            if theirs is not None:
                print(f"    TorchServe {theirs[0]} {theirs[1]!r}\n    scancer    {ours[0]} {ours[1]!r}")
        else:
            tally["different"] += 1
            failures.append(("store workflow", label))
            print(f"DIFFERENT          {label}: {shown}")
            for line in details:
                print(f"    {line}")
            if theirs is not None:
                print(f"    TorchServe {theirs[0]} {theirs[1]!r}\n    scancer    {ours[0]} {ours[1]!r}")

    def both(servers, label, method, path, body=b"", headers=None, port="management", keys="management",
             describe=False):
        """The same request to each server (with its own key of kind `keys`, or `headers(server)`)."""
        answers = []
        for server in servers:
            sent = dict(raw if body else {})
            if callable(headers):
                sent.update(headers(server))
            elif headers:
                sent.update(headers)
            elif keys:
                sent.update(server.bearer(keys))
            try:
                answers.append(exchange(server.ports[port], method, path, body, sent, timeout=300))
            except (OSError, http.client.HTTPException) as e:
                answers.append((None, f"<no answer: {type(e).__name__}: {e}>".encode()))
        theirs, ours = answers
        details = []
        if describe and theirs[0] == ours[0] == 200:
            try:
                details = description_differences(json.loads(theirs[1]), json.loads(ours[1]))
            except ValueError as e:
                details = [f"not JSON: {e}"]
            same = not details
        else:
            same = theirs == ours
        outcome(label, same, f"{method} {path} ({port}) -> {theirs[0]} {theirs[1][:60]!r}"
                + (" (field by field)" if describe and same else ""), theirs, ours, details)
        return answers

    def listing_check(label, stores, downloaded):
        listings = [sorted(p.name for p in store.iterdir()) for store in stores]
        same = listings[0] == listings[1] and all(("pcamurl.mar" in names) == downloaded for names in listings)
        outcome(label, same, f"model stores: TorchServe {listings[0]}, scancer {listings[1]}")

    servers, stores = pair("plain", token_auth=False)
    try:
        for server in servers:
            server.start()
        both(servers, "list-empty", "GET", "/models")
        both(servers, "register", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        both(servers, "register-url", "POST",
             f"/models?url={url}&model_name=pcamurl&initial_workers=1&synchronous=true")
        listing_check("register-url-downloaded", stores, True)
        both(servers, "list", "GET", "/models")
        wait_all_ready(servers, "pcam")
        both(servers, "describe", "GET", "/models/pcam", describe=True)
        wait_all_ready(servers, "pcamurl")
        both(servers, "describe-url", "GET", "/models/pcamurl", describe=True)
        both(servers, "scale-2", "PUT", "/models/pcam?min_worker=2&synchronous=true")
        wait_all_ready(servers, "pcam")
        both(servers, "describe-scaled", "GET", "/models/pcam", describe=True)
        both(servers, "scale-0", "PUT", "/models/pcam?min_worker=0&synchronous=true")
        both(servers, "describe-scaled-0", "GET", "/models/pcam", describe=True)
        both(servers, "predict-no-worker", "PUT", "/predictions/pcam", png, port="inference")
        both(servers, "predict-no-worker-version", "PUT", "/predictions/pcam/1.0", png, port="inference")
        both(servers, "scale-back", "PUT", "/models/pcam?min_worker=1&synchronous=true")
        wait_all_ready(servers, "pcam")
        both(servers, "predict-scaled-back", "PUT", "/predictions/pcam", png, port="inference")
        both(servers, "register-2.0", "POST", "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true")
        both(servers, "set-default-2.0", "PUT", "/models/pcam/2.0/set-default")
        wait_all_ready(servers, "pcam")
        both(servers, "describe-default-2.0", "GET", "/models/pcam", describe=True)
        both(servers, "unregister-no-version", "DELETE", "/models/pcam")
        both(servers, "predict-default", "PUT", "/predictions/pcam", png, port="inference")
        both(servers, "predict-1.0", "PUT", "/predictions/pcam/1.0", png, port="inference")
        both(servers, "predict-2.0", "PUT", "/predictions/pcam/2.0", png, port="inference")
        both(servers, "unregister-1.0", "DELETE", "/models/pcam/1.0")
        both(servers, "list-after-unregister-1.0", "GET", "/models")
        both(servers, "unregister-url", "DELETE", "/models/pcamurl")
        listing_check("unregister-url-deleted", stores, False)
        both(servers, "list-after-unregister-url", "GET", "/models")
        # Outside scancer's --allowed-urls (localhost, not 127.0.0.1), and missing: TorchServe's
        # download fails, so neither store changes.
        both(servers, "register-url-not-allowed", "POST",
             f"/models?url={files.url.replace('127.0.0.1', 'localhost')}/files/missing.mar")
        both(servers, "scale-negative", "PUT", "/models/pcam?min_worker=-1&max_worker=-1&synchronous=true")
        both(servers, "inference-port-models", "GET", "/models", port="inference")
        both(servers, "management-port-predict", "PUT", "/predictions/pcam", png)
        both(servers, "management-port-ping", "GET", "/ping")
        both(servers, "inference-port-metrics", "GET", "/metrics", port="inference")
    finally:
        for server in servers:
            server.stop()

    servers, stores = pair("token", token_auth=True)
    try:
        for server in servers:
            server.start()
        both(servers, "token-missing", "GET", "/models", keys=None)
        both(servers, "token-missing-ping", "GET", "/ping", port="inference", keys=None)
        both(servers, "token-ping", "GET", "/ping", port="inference", keys="inference")
        old = {id(server): server.bearer("management") for server in servers}
        both(servers, "token-regen-management", "GET", "/token?type=management", keys="API")
        for server in servers:
            server.read_keys()
        changed = [old[id(server)] != server.bearer("management") for server in servers]
        outcome("token-regen-management-changed-key", changed == [True, True],
                f"key_file.json's management key changed: TorchServe {changed[0]}, scancer {changed[1]}")
        both(servers, "token-old-management-key", "GET", "/models", headers=lambda server: old[id(server)])
        both(servers, "token-new-management-key", "GET", "/models", keys="management")
        both(servers, "token-substring-in-query", "GET", "/models?x=/token", keys="management")
    finally:
        for server in servers:
            server.stop()
        files.server.shutdown()
    print(f"store workflow: {tally['same']} same, {tally['on purpose']} differ on purpose, "
          f"{tally['different']} DIFFERENT")
    return failures


def archive_checks(scancer, work):
    """Parts 1 and 2, and store_checks: archives served by TorchServe, TorchServe's archives read by scancer."""
    store = work / "store"
    store.mkdir()
    failures = []

    # 1. Archives built by scancer, served by TorchServe.
    cases = [
        ("pcam", ROOT / "examples/pcam-classification.pt", ROOT / "examples/pcam-classification.toml"),
        ("tissue", ROOT / "testdata/models/tissue-multiclass.pt", ROOT / "testdata/models/tissue-multiclass.toml"),
    ]
    for name, model, config in cases:
        subprocess.run([scancer, "archive", "--model-name", name, "--version", "1.0", "--serialized-file",
                        model, "--config", config, "--export-path", store], check=True, capture_output=True)
    # TorchServe's built-in image_classifier on the multiclass model, for explanations (scancer's
    # own handler gives TorchServe none).
    shutil.copy(ROOT / "testdata/mar/tissue.mar", store / "classifier.mar")
    ports = {k: free_port() for k in ("inference", "management", "metrics")}
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['inference']}\n"
        f"management_address=http://127.0.0.1:{ports['management']}\n"
        f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
        "disable_token_authorization=true\ndefault_workers_per_model=1\nmetrics_mode=prometheus\n"
    )
    env = dict(os.environ, LOG_LOCATION=str(work / "logs"), METRICS_LOCATION=str(work / "logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", store, "--ts-config", work / "config.properties",
                    "--models", "pcam=pcam.mar", "tissue=tissue.mar", "classifier=classifier.mar",
                    "--disable-token-auth"],
                   check=True, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # (The server inherits its starter's output; capturing it would wait for the server to exit.)
    base = f"http://127.0.0.1:{ports['inference']}"
    try:
        deadline = time.time() + 180
        last_error = None
        while True:
            try:
                models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ports['management']}/models/pcam"))
                ready = all(any(w["status"] == "READY" for w in json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{ports['management']}/models/{m}"))[0]["workers"])
                    for m in ("pcam", "tissue", "classifier"))
                if models and ready:
                    break
            except Exception as e:  # not up yet
                last_error = e
            if time.time() > deadline:
                sys.exit(f"TorchServe did not get ready in 180 s ({last_error}); see {work / 'logs'}")
            time.sleep(0.5)
        checks = [
            ("pcam", cases[0], sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples/patches").glob("*.png"))
             + ["testdata/images/patch.jpg", "testdata/images/patch-rgba.png", "testdata/images/patch-gray.png"]),
            ("tissue", cases[1], ["testdata/images/tall-130x160.png", "testdata/images/wide-203x80.png",
                                  "testdata/images/patch.jpg"]),
        ]
        for name, (_, _, _), images in checks:
            mar = store / f"{name}.mar"
            ours = scancer_records(scancer, str(mar), [str(ROOT / i) for i in images])
            for image in images:
                body = (ROOT / image).read_bytes()
                # As `curl -T` sends it; urllib would claim a form body, which TorchServe fails to parse.
                request = urllib.request.Request(f"{base}/predictions/{name}", data=body, method="PUT",
                                                 headers={"Content-Type": "application/octet-stream"})
                answer = urllib.request.urlopen(request).read().decode()
                mine = ours[str(ROOT / image)]
                if name == "pcam":
                    ok = answer.strip() == str(mine["class"])
                    shown = f"TorchServe {answer.strip()!r}, scancer class {mine['class']} ({mine['score']:.4f})"
                else:
                    theirs = json.loads(answer)
                    ok = list(theirs) == list(mine["probabilities"]) and all(
                        abs(theirs[k] - mine["probabilities"][k]) <= 1e-5 for k in theirs)
                    shown = f"TorchServe {theirs}, scancer {mine['probabilities']}"
                print(f"{'ok  ' if ok else 'FAIL'} {name} {image}: {shown}")
                if not ok:
                    failures.append((name, image))
        failures += compare_servers(scancer, store, ports)
    finally:
        subprocess.run(["torchserve", "--stop"], env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # 2. torch-model-archiver's own archives, read by scancer.
    reference = json.loads((ROOT / "testdata/reference.json").read_text())["image_classifier"]
    for archive in ["testdata/mar/tissue.mar", "testdata/mar/tissue-tgz.tar.gz", "testdata/mar/tissue-dir"]:
        ours = scancer_records(scancer, str(ROOT / archive), [str(ROOT / i) for i in reference])
        labels = ["adipose", "stroma", "tumour", "lymphocytes"]
        for image, want in reference.items():
            got = ours[str(ROOT / image)]["probabilities"]
            ok = all(abs(got[l] - want["probabilities"][k]) <= 1e-5 for k, l in enumerate(labels))
            print(f"{'ok  ' if ok else 'FAIL'} torch-model-archiver {archive} {image}")
            if not ok:
                failures.append((archive, image))
    failures += store_checks(scancer, store, work)
    return failures


# What operators watch, by TorchServe 0.12's names (issue 25).
WATCHED = ["ts_inference_requests_total", "ts_inference_latency_microseconds", "ts_queue_latency_microseconds",
           "Requests2XX", "Requests4XX", "QueueTime", "WorkerThreadTime", "WorkerLoadTime", "HandlerTime",
           "PredictionTime", "CPUUtilization", "MemoryUsed", "MemoryAvailable", "MemoryUtilization",
           "DiskAvailable", "DiskUsage", "DiskUtilization"]
DATE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{3}"
LOG_LINES = {
    "access_log.log": DATE + r' - /127\.0\.0\.1:\d+ "[A-Z]+ \S+ HTTP/1\.1" \d{3} \d+$',
    "ts_log.log": DATE + r" \[(INFO |WARN |ERROR|DEBUG)\] \S+ \S+ - ",
    "model_log.log": DATE + r" \[(INFO |WARN |ERROR|DEBUG)\] W-\d+-\S+ MODEL_LOG - ",
    "ts_metrics.log": DATE + r" - \w+\.\w+:[-\d.E]+\|#[^|]*\|#hostname:[^,]+,timestamp:\d+$",
    "model_metrics.log": DATE + r" - \w+\.\w+:[-\d.E]+\|#ModelName:\w+,Level:Model\|#hostname:[^,]+,"
                         r"(requestID:[^,]+,)?timestamp:\d+$",
}


def families(port):
    """{name: (type, sorted label names, sorted model_version values)} of /metrics."""
    text = exchange(port, "GET", "/metrics")[1].decode()
    found = {}
    for name in WATCHED:
        kind = next((l.split()[3] for l in text.splitlines() if l.startswith(f"# TYPE {name} ")), None)
        labels, versions = set(), set()
        for line in text.splitlines():
            if line.startswith(name + "{"):
                pairs = [kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(",") if kv]
                labels |= {k for k, _ in pairs}
                versions |= {v.strip('"') for k, v in pairs if k == "model_version"}
        found[name] = (kind, sorted(labels), sorted(versions))
    return found


def observability_checks(scancer, store, work, mode):
    """TorchServe and `scancer serve --model-store` side by side in metrics_mode `mode`, the same
    requests to both; then their log files compared, and in prometheus mode their metric families
    and a Prometheus server's queries."""
    failures = []
    servers = {}
    for name in ("torchserve", "scancer"):
        home = work / f"observe-{mode}-{name}"
        home.mkdir()
        ports = {k: free_port() for k in ("inference", "management", "metrics")}
        (home / "config.properties").write_text(
            f"inference_address=http://127.0.0.1:{ports['inference']}\n"
            f"management_address=http://127.0.0.1:{ports['management']}\n"
            f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
            f"disable_token_authorization=true\ndefault_workers_per_model=1\nmetrics_mode={mode}\n"
            f"metric_time_interval=2\nmodel_store={store}\nload_models=pcam=pcam.mar\n")
        env = dict(os.environ, LOG_LOCATION=str(home / "logs"), METRICS_LOCATION=str(home / "logs"))
        if name == "torchserve":
            subprocess.run(["torchserve", "--start", "--ncs", "--ts-config", home / "config.properties",
                            "--disable-token-auth"], check=True, env=env, cwd=home,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stop = lambda env=env, home=home: subprocess.run(["torchserve", "--stop"], env=env, cwd=home,
                                                               stdout=subprocess.DEVNULL)
        else:
            process = subprocess.Popen([scancer, "serve", "--ts-config", "config.properties", "--ncs", "--no-grpc"],
                                       env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stop = lambda process=process: (process.terminate(), process.wait())
        servers[name] = (ports, home, stop)
    try:
        for name, (ports, _, _) in servers.items():
            deadline = time.time() + 180
            while True:
                try:
                    workers = json.loads(exchange(ports["management"], "GET", "/models/pcam")[1])[0]["workers"]
                    if workers and all(w["status"] == "READY" for w in workers):
                        break
                except (OSError, ValueError, KeyError, IndexError):
                    pass
                if time.time() > deadline:
                    sys.exit(f"{name} did not get ready in 180 s")
                time.sleep(0.5)
        png = (ROOT / "examples/patches/patch-00.png").read_bytes()
        raw = {"Content-Type": "application/octet-stream"}
        for ports, _, _ in servers.values():
            for path in ["/predictions/pcam"] * 3 + ["/predictions/pcam/1.0"] * 2:
                exchange(ports["inference"], "PUT", path, png, raw)
            exchange(ports["inference"], "GET", "/nowhere")
        time.sleep(5)  # two system samples on each (metric_time_interval=2)
        print(f"-- metrics_mode={mode}")
        failures += log_checks({name: home / "logs" for name, (_, home, _) in servers.items()})
        if mode != "prometheus":
            return failures
        found = {name: families(ports["metrics"]) for name, (ports, _, _) in servers.items()}
        for family in WATCHED:
            theirs, ours = found["torchserve"][family], found["scancer"][family]
            ok = theirs == ours
            print(f"{'ok  ' if ok else 'FAIL'} metrics {family}: TorchServe {theirs}"
                  + ("" if ok else f", scancer {ours}"))
            if not ok:
                failures.append(("metrics", family))
        failures += prometheus_checks({name: ports["metrics"] for name, (ports, _, _) in servers.items()}, work)
    finally:
        for _, _, stop in servers.values():
            stop()
    return failures


def log_checks(folders):
    """Every line of scancer's five files has the shape TorchServe's lines of that file have."""
    failures = []
    for file, pattern in LOG_LINES.items():
        shapes = {}
        for name, folder in folders.items():
            path = folder / file
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            matching = [l for l in lines if re.match(pattern, l)]
            shapes[name] = (len(lines), len(matching))
        theirs, ours = shapes["torchserve"], shapes["scancer"]
        # Both empty (metric logs in prometheus mode), or every line of ours in TorchServe's shape.
        ok = theirs[0] == ours[0] == 0 or (ours[0] > 0 and ours[0] == ours[1] and theirs[1] > 0)
        print(f"{'ok  ' if ok else 'FAIL'} logs {file}: TorchServe {theirs[1]} of {theirs[0]} lines in this shape, "
              f"scancer {ours[1]} of {ours[0]}")
        if not ok:
            failures.append(("logs", file))
    return failures


def prometheus_checks(metrics_ports, work):
    """One Prometheus scraping both; each watched family queried, the label names compared."""
    prometheus = shutil.which("prometheus") or str(ROOT / ".tools/prometheus")
    if not Path(prometheus).exists():
        print("skip prometheus: no prometheus on PATH or in .tools/ (cargo xtask setup)")
        return []
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        for name, port in metrics_ports.items()))
    web = free_port()
    process = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{web}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    try:
        def query(expression):
            url = f"http://127.0.0.1:{web}/api/v1/query?query={urllib.parse.quote(expression)}"
            return json.load(urllib.request.urlopen(url))["data"]["result"]

        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if len([r for r in query("up") if r["value"][1] == "1"]) == len(metrics_ports):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        time.sleep(3)
        for family in WATCHED:
            labels = {}
            for result in query(family):
                metric = dict(result["metric"])
                job = metric.pop("job")
                for k in ("instance", "__name__"):
                    metric.pop(k, None)
                labels.setdefault(job, set()).update(metric)
            theirs, ours = sorted(labels.get("torchserve", [])), sorted(labels.get("scancer", []))
            ok = theirs == ours and "torchserve" in labels and "scancer" in labels
            print(f"{'ok  ' if ok else 'FAIL'} prometheus {family}: labels TorchServe {theirs}"
                  + ("" if ok else f", scancer {ours} (jobs answering: {sorted(labels)})"))
            if not ok:
                failures.append(("prometheus", family))
    finally:
        process.terminate()
        process.wait()
    return failures


def grpc_management_checks(scancer, work):
    """One workflow through the gRPC management API of a TorchServe and of `scancer serve
    --model-store`, both started empty on the same store (examples/grpc_management_replay.py, run by
    the clients venv of `cargo xtask setup`): the same codes and messages, call by call."""
    scancer = str(Path(scancer).resolve())
    python = ROOT / ".tools/clients-venv/bin/python"
    if not python.exists():
        print("skip grpc management: no .tools/clients-venv (cargo xtask setup)")
        return []
    store = work / "grpc-store"
    store.mkdir()
    for version, file in [("1.0", "pcam.mar"), ("2.0", "pcam-2.0.mar")]:
        out = work / f"grpc-archive-{version}"
        out.mkdir()
        subprocess.run([scancer, "archive", "--model-name", "pcam", "--version", version, "--serialized-file",
                        ROOT / "examples/pcam-classification.pt", "--config",
                        ROOT / "examples/pcam-classification.toml", "--export-path", out],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.move(out / "pcam.mar", store / file)
    config = ["disable_token_authorization=true", "enable_model_api=true", "default_workers_per_model=1"]
    ts = TorchServe(work, "grpc-torchserve", store, config=config).start()
    answers = {}
    replay = lambda port: json.loads(subprocess.run(
        [python, ROOT / "examples/grpc_management_replay.py", str(port), ROOT / "proto"],
        check=True, capture_output=True, text=True).stdout)
    try:
        answers["torchserve"] = replay(ts.ports["grpc_m"])
    finally:
        ts.stop()
    home = work / "grpc-scancer"
    home.mkdir()
    port, management = free_port(), free_port()
    server = subprocess.Popen([scancer, "serve", "--model-store", store, "--enable-model-api", "--ncs",
                               "--disable-token-auth", "--port", str(free_port()), "--management-port",
                               str(management), "--metrics-port", str(free_port()), "--grpc-port",
                               str(free_port()), "--grpc-management-port", str(port)],
                              cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_answering(management, "/models")
        answers["scancer"] = replay(port)
    finally:
        server.terminate()
        server.wait()
    # TorchServe's gRPC errors add the Java exception after the message (first line compared), and
    # two of its exceptions reach gRPC unmapped (UNKNOWN, no message), where scancer gives the
    # REST status's code: README, "Differences from TorchServe".
    different = {"register again": "ABORTED (409) where TorchServe answers UNKNOWN",
                 "unregister default": "PERMISSION_DENIED (403) where TorchServe answers UNKNOWN"}
    failures = []
    for theirs, ours in zip(answers["torchserve"], answers["scancer"]):
        first = lambda answer: [answer[0], answer[1], answer[2] if answer[1] == "OK" else answer[2].split("\n")[0]]
        ok = first(theirs) == first(ours)
        mark = "ok  " if ok else ("diff" if theirs[0] in different else "FAIL")
        print(f"{mark} grpc management {theirs[0]}: TorchServe {theirs[1]} {first(theirs)[2][:70]!r}"
              + ("" if ok else f", scancer {ours[1]} {first(ours)[2][:70]!r}")
              + (f" ({different[theirs[0]]})" if not ok and theirs[0] in different else ""))
        if not ok and theirs[0] not in different:
            failures.append(("grpc management", theirs[0]))
    return failures


def observability(scancer, work):
    """observability_checks on a store of its own holding the pcam archive."""
    store = work / "observe-store"
    store.mkdir()
    subprocess.run([scancer, "archive", "--model-name", "pcam", "--version", "1.0", "--serialized-file",
                    ROOT / "examples/pcam-classification.pt", "--config", ROOT / "examples/pcam-classification.toml",
                    "--export-path", store], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (observability_checks(scancer, store, work, "prometheus")
            + observability_checks(scancer, store, work, "log"))


def formats_checks(scancer, work):
    """Issue 26: scancer's archives of ONNX models (and of an AOTInductor package) on a real TorchServe,
    whose handler (src/mar/scancer_handler.py) runs them in onnxruntime (and aoti_load_package), against
    `scancer serve` on the same archives and `scancer predict` on the model files: pcam's answers (class
    indices) equal, the multiclass model's probabilities within 1e-6. The Python needs onnxruntime 1.32."""
    store = work / "formats-store"
    store.mkdir()
    cases = {
        "pcam-onnx": ("examples/pcam-classification.onnx", "examples/pcam-classification.toml"),
        "tissue-onnx": ("testdata/models/tissue-multiclass.onnx", "testdata/models/tissue-multiclass.toml"),
        "pcam-pt2": ("examples/pcam-classification.pt2", "examples/pcam-classification.toml"),
    }
    for name, (model, config) in cases.items():
        subprocess.run([scancer, "archive", "--model-name", name, "--version", "1.0", "--serialized-file",
                        ROOT / model, "--config", ROOT / config, "--export-path", store], check=True,
                       capture_output=True)
    ports = {k: free_port() for k in ("inference", "management", "metrics")}
    (work / "formats.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['inference']}\n"
        f"management_address=http://127.0.0.1:{ports['management']}\n"
        f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
        "disable_token_authorization=true\ndefault_workers_per_model=1\n")
    env = dict(os.environ, LOG_LOCATION=str(work / "formats-logs"), METRICS_LOCATION=str(work / "formats-logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", store, "--ts-config",
                    work / "formats.properties", "--models", *(f"{n}={n}.mar" for n in cases), "--disable-token-auth"],
                   check=True, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A batch of 16 in scancer: the AOTInductor package takes 16 and more (an answer does not depend
    # on the batch it ran in).
    port = free_port()
    server = subprocess.Popen([scancer, "serve", "--quiet", "--port", str(port), "--no-grpc", "--batch-size", "16",
                               *(str(store / f"{n}.mar") for n in cases)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    raw = {"Content-Type": "application/octet-stream"}
    try:
        wait_answering(port, "/ping")
        def answering(name):
            try:
                return exchange(ports["inference"], "PUT", f"/predictions/{name}",
                                (ROOT / "examples/patches/patch-00.png").read_bytes(), raw)[0] == 200
            except OSError:  # not listening yet
                return False

        deadline = time.time() + 180
        while not all(answering(n) for n in cases):
            if time.time() > deadline:
                sys.exit(f"TorchServe did not answer in 180 s; see {work / 'formats-logs'}")
            time.sleep(0.5)
        pcam = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples/patches").glob("*.png"))
        tissue = ["testdata/images/tall-130x160.png", "testdata/images/wide-203x80.png", "testdata/images/patch.jpg"]
        for name, images in (("pcam-onnx", pcam), ("pcam-pt2", pcam), ("tissue-onnx", tissue)):
            predicted = scancer_records(scancer, str(ROOT / cases[name][0]), [str(ROOT / i) for i in images])
            for image in images:
                body = (ROOT / image).read_bytes()
                theirs = exchange(ports["inference"], "PUT", f"/predictions/{name}", body, raw)
                ours = exchange(port, "PUT", f"/predictions/{name}", body, raw)
                mine = predicted[str(ROOT / image)]
                if name.startswith("pcam"):
                    ok = theirs == ours and theirs[1].decode().strip() == str(mine["class"])
                else:
                    t, o = json.loads(theirs[1]), json.loads(ours[1])
                    ok = theirs[0] == ours[0] == 200 and list(t) == list(o) == list(mine["probabilities"]) and all(
                        abs(t[k] - o[k]) <= 1e-6 and abs(t[k] - mine["probabilities"][k]) <= 1e-6 for k in t)
                print(f"{'ok  ' if ok else 'FAIL'} formats {name} {image}: TorchServe {theirs[0]} "
                      f"{theirs[1][:70]!r}, scancer serve {ours[0]} {ours[1][:70]!r}")
                if not ok:
                    failures.append(("formats", name, image))
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["torchserve", "--stop"], env=env, cwd=work, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scancer", default=str(ROOT / "target/release/scancer"))
    ap.add_argument("--only-store", action="store_true", help="run only the live model-store workflow")
    ap.add_argument("--only-observability", action="store_true",
                    help="run only the metrics, log files and Prometheus comparison")
    ap.add_argument("--only-grpc-management", action="store_true",
                    help="run only the gRPC management API comparison")
    ap.add_argument("--only-formats", action="store_true",
                    help="run only the ONNX and AOTInductor archives' comparison (issue 26)")
    args = ap.parse_args()
    # `torchserve` beside the Python that runs this (a virtual environment need not be activated).
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    work = Path(tempfile.mkdtemp(prefix="scancer-interop-"))
    if args.only_observability or args.only_grpc_management or args.only_formats:
        failures = (observability(args.scancer, work) if args.only_observability
                    else formats_checks(args.scancer, work) if args.only_formats
                    else grpc_management_checks(args.scancer, work))
        shutil.rmtree(work, ignore_errors=True)
        print(f"interop: {len(failures)} mismatch(es)")
        return 1 if failures else 0
    failures = [] if args.only_store else archive_checks(args.scancer, work)
    failures += store_workflow(args.scancer, work)
    if not args.only_store:
        failures += observability(args.scancer, work)
        failures += grpc_management_checks(args.scancer, work)
        failures += formats_checks(args.scancer, work)
    shutil.rmtree(work, ignore_errors=True)
    print(f"interop: {len(failures)} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
