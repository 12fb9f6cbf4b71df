#!/usr/bin/env python3
"""Interoperability with a real TorchServe 0.12 (developer script; not run by the tests or CI).

Needs, in the Python that runs it: torch 2.13, torchvision, torchserve==0.12.0,
torch-model-archiver==0.12.0 and captum (pip), and Java 17. Builds archives with `scancer archive`,
serves them on a real TorchServe bound to 127.0.0.1 on free ports, sends every test image, and checks
TorchServe's answers against `scancer predict` for the same images; serves the same archives on
`scancer serve` and sends both servers the same requests, which must get identical status codes and
bodies on every endpoint they share; then feeds torch-model-archiver's own archives (testdata/mar) to
`scancer predict`. Prints a summary; exits 1 on any mismatch.

    python examples/interop_torchserve.py [--scancer target/release/scancer]
"""

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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scancer_records(scancer, model, images, *extra):
    out = subprocess.run([scancer, "predict", "-q", "-f", "jsonl", "-m", model, *extra, *images],
                         capture_output=True, text=True)
    return {r["path"]: r for r in map(json.loads, out.stdout.splitlines())}


def exchange(port, method, path, body=b"", headers=None):
    """One request; the status and the body as sent, whatever the status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    answer = (response.status, response.read())
    connection.close()
    return answer


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
    # even the float bodies of the multiclass model comparable byte for byte.
    server = subprocess.Popen([scancer, "serve", "--quiet", "--port", str(port), "--no-optimize",
                               "--batch-size", "1", store / "pcam.mar", store / "tissue.mar"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    counted_before = metric_values(ports["metrics"])
    try:
        deadline = time.time() + 60
        while True:
            try:
                if exchange(port, "GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("scancer serve did not start")
            time.sleep(0.2)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scancer", default=str(ROOT / "target/release/scancer"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scancer-interop-"))
    store = work / "store"
    store.mkdir()
    failures = []

    # 1. Archives built by scancer, served by TorchServe.
    cases = [
        ("pcam", ROOT / "examples/pcam-classification.pt", ROOT / "examples/pcam-classification.toml"),
        ("tissue", ROOT / "testdata/models/tissue-multiclass.pt", ROOT / "testdata/models/tissue-multiclass.toml"),
    ]
    for name, model, config in cases:
        subprocess.run([args.scancer, "archive", "--model-name", name, "--version", "1.0", "--serialized-file",
                        model, "--config", config, "--export-path", store], check=True, capture_output=True)
    ports = {k: free_port() for k in ("inference", "management", "metrics")}
    (work / "config.properties").write_text(
        f"inference_address=http://127.0.0.1:{ports['inference']}\n"
        f"management_address=http://127.0.0.1:{ports['management']}\n"
        f"metrics_address=http://127.0.0.1:{ports['metrics']}\n"
        "disable_token_authorization=true\ndefault_workers_per_model=1\nmetrics_mode=prometheus\n"
    )
    env = dict(os.environ, LOG_LOCATION=str(work / "logs"), METRICS_LOCATION=str(work / "logs"))
    subprocess.run(["torchserve", "--start", "--ncs", "--model-store", store, "--ts-config", work / "config.properties",
                    "--models", "pcam=pcam.mar", "tissue=tissue.mar", "--disable-token-auth"],
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
                    f"http://127.0.0.1:{ports['management']}/models/{m}"))[0]["workers"]) for m in ("pcam", "tissue"))
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
            ours = scancer_records(args.scancer, str(mar), [str(ROOT / i) for i in images])
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
        failures += compare_servers(args.scancer, store, ports)
    finally:
        subprocess.run(["torchserve", "--stop"], env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # 2. torch-model-archiver's own archives, read by scancer.
    reference = json.loads((ROOT / "testdata/reference.json").read_text())["image_classifier"]
    for archive in ["testdata/mar/tissue.mar", "testdata/mar/tissue-tgz.tar.gz", "testdata/mar/tissue-dir"]:
        ours = scancer_records(args.scancer, str(ROOT / archive), [str(ROOT / i) for i in reference])
        labels = ["adipose", "stroma", "tumour", "lymphocytes"]
        for image, want in reference.items():
            got = ours[str(ROOT / image)]["probabilities"]
            ok = all(abs(got[l] - want["probabilities"][k]) <= 1e-5 for k, l in enumerate(labels))
            print(f"{'ok  ' if ok else 'FAIL'} torch-model-archiver {archive} {image}")
            if not ok:
                failures.append((archive, image))
    failures += store_checks(args.scancer, store, work)
    shutil.rmtree(work, ignore_errors=True)
    print(f"interop: {len(failures)} mismatch(es)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
