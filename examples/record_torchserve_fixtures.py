#!/usr/bin/env python3
"""Records a real TorchServe 0.12's answers to every management call `scancer store` makes, and to the
inference calls of remote predict, into testdata/torchserve/*.json (developer script; the tests replay
these fixtures from an in-process server, and never need TorchServe).

Needs torchserve==0.12.0, torch-model-archiver==0.12.0, captum and Java 17 beside `python`, and a
release build of scancer (for `scancer archive`).

    python examples/record_torchserve_fixtures.py [--scancer target/release/scancer]

Each fixture is {"name", "method", "path", "request_headers", "status", "headers", "body"}; headers
keep only content-type and www-authenticate, and the per-request x-request-id is dropped. Worker
pids, start times and memory are what TorchServe said during the recording.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "testdata" / "torchserve"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TorchServe:
    def __init__(self, work, store, *, model_api, token_auth, models=()):
        self.work = work / f"ts-{model_api}-{token_auth}"
        self.work.mkdir()
        self.ports = {k: free_port() for k in ("inference", "management", "metrics")}
        config = (f"inference_address=http://127.0.0.1:{self.ports['inference']}\n"
                  f"management_address=http://127.0.0.1:{self.ports['management']}\n"
                  f"metrics_address=http://127.0.0.1:{self.ports['metrics']}\n"
                  f"default_workers_per_model=1\n")
        if not token_auth:
            config += "disable_token_authorization=true\n"
        if model_api:
            config += "enable_model_api=true\n"
        (self.work / "config.properties").write_text(config)
        self.env = dict(os.environ, LOG_LOCATION=str(self.work / "logs"), METRICS_LOCATION=str(self.work / "logs"))
        command = ["torchserve", "--start", "--ncs", "--model-store", str(store), "--ts-config",
                   str(self.work / "config.properties")]
        if models:
            command += ["--models", *models]
        if not token_auth:
            command.append("--disable-token-auth")
        if model_api:
            command.append("--enable-model-api")
        subprocess.run(command, check=True, env=self.env, cwd=self.work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.token = None
        deadline = time.time() + 180
        while True:
            if token_auth and self.token is None and (self.work / "key_file.json").exists():
                try:
                    self.keys = json.loads((self.work / "key_file.json").read_text())
                    self.token = self.keys["management"]["key"]
                except (ValueError, KeyError):
                    pass
            try:
                headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                status, _, _ = exchange(self.ports["management"], "GET", "/models", headers=headers)
                if status == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit(f"TorchServe did not start; see {self.work / 'logs'}")
            time.sleep(0.5)

    def stop(self):
        subprocess.run(["torchserve", "--stop"], env=self.env, cwd=self.work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def exchange(port, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    kept = {k.lower(): v for k, v in response.getheaders() if k.lower() in ("content-type", "www-authenticate")}
    answer = (response.status, kept, response.read().decode())
    connection.close()
    return answer


def wait_ready(ts, model, workers, headers=None):
    deadline = time.time() + 120
    while time.time() < deadline:
        status, _, body = exchange(ts.ports["management"], "GET", f"/models/{model}", headers=headers)
        if status == 200 and sum(w["status"] == "READY" for w in json.loads(body)[0]["workers"]) >= workers:
            return
        time.sleep(0.5)
    sys.exit(f"{model} never had {workers} READY workers")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scancer", default=str(ROOT / "target/release/scancer"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scancer-fixtures-"))
    store = work / "store"
    store.mkdir()
    for name, version, model, config in [
        ("pcam", "1.0", "examples/pcam-classification.pt", "examples/pcam-classification.toml"),
        ("tissue", "1.0", "testdata/models/tissue-multiclass.pt", "testdata/models/tissue-multiclass.toml"),
    ]:
        subprocess.run([args.scancer, "archive", "--model-name", name, "--version", version, "--serialized-file",
                        ROOT / model, "--config", ROOT / config, "--export-path", store, "-f"],
                       check=True, capture_output=True)
    # A second version of pcam, in its own folder so that the file name differs.
    (store / "v2").mkdir()
    subprocess.run([args.scancer, "archive", "--model-name", "pcam", "--version", "2.0", "--serialized-file",
                    ROOT / "examples/pcam-classification.pt", "--config", ROOT / "examples/pcam-classification.toml",
                    "--export-path", store / "v2", "-f"], check=True, capture_output=True)
    os.rename(store / "v2" / "pcam.mar", store / "pcam-2.0.mar")
    png = (ROOT / "examples/patches/patch-00.png").read_bytes()
    raw = {"Content-Type": "application/octet-stream"}
    fixtures = []

    def record(ts, name, method, path, body=b"", headers=None, port="management"):
        status, kept, text = exchange(ts.ports[port], method, path, body, headers)
        shown = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        fixtures.append({"name": name, "method": method, "path": path, "request_headers": shown,
                         "status": status, "headers": kept, "body": text})
        print(f"{status} {name}: {method} {path}", file=sys.stderr)
        return status, text

    # 1. Model API on, no token auth: the whole life cycle.
    ts = TorchServe(work, store, model_api=True, token_auth=False)
    try:
        record(ts, "list-empty", "GET", "/models")
        record(ts, "register-sync", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "register-async", "POST", "/models?url=tissue.mar&initial_workers=1")
        wait_ready(ts, "tissue", 1)
        record(ts, "register-conflict", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "register-no-url", "POST", "/models")
        record(ts, "register-missing-file", "POST", "/models?url=missing.mar")
        record(ts, "register-bad-url", "POST", "/models?url=http://127.0.0.1:9/x.mar")
        record(ts, "list", "GET", "/models")
        record(ts, "list-page-1", "GET", "/models?limit=1")
        record(ts, "list-page-2", "GET", "/models?limit=1&next_page_token=1")
        record(ts, "describe", "GET", "/models/pcam")
        record(ts, "describe-version", "GET", "/models/pcam/1.0")
        record(ts, "describe-unknown", "GET", "/models/nope")
        record(ts, "describe-unknown-version", "GET", "/models/pcam/9.9")
        record(ts, "scale-sync", "PUT", "/models/pcam?min_worker=2&max_worker=2&synchronous=true")
        record(ts, "describe-scaled", "GET", "/models/pcam")
        record(ts, "scale-async", "PUT", "/models/tissue?min_worker=2&max_worker=2")
        record(ts, "describe-scaling", "GET", "/models/tissue")
        wait_ready(ts, "tissue", 2)
        record(ts, "describe-scaled-async", "GET", "/models/tissue")
        record(ts, "scale-min-over-max", "PUT", "/models/pcam?min_worker=3&max_worker=2")
        record(ts, "scale-unknown", "PUT", "/models/nope?min_worker=1")
        record(ts, "register-version-2", "POST", "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true")
        record(ts, "describe-all", "GET", "/models/pcam/all")
        record(ts, "set-default", "PUT", "/models/pcam/2.0/set-default")
        record(ts, "set-default-unknown-version", "PUT", "/models/pcam/9.9/set-default")
        record(ts, "unregister-default-version", "DELETE", "/models/pcam/2.0")
        record(ts, "unregister-version", "DELETE", "/models/pcam/1.0")
        record(ts, "predict", "PUT", "/predictions/pcam", png, raw, port="inference")
        record(ts, "predict-unknown", "PUT", "/predictions/nope", png, raw, port="inference")
        record(ts, "predict-not-an-image", "PUT", "/predictions/pcam", b"not an image", raw, port="inference")
        record(ts, "register-no-workers", "POST", "/models?url=pcam.mar&model_name=idle&initial_workers=0&synchronous=true")
        record(ts, "predict-no-worker", "PUT", "/predictions/idle", png, raw, port="inference")
        record(ts, "unregister", "DELETE", "/models/tissue")
        record(ts, "unregister-unknown", "DELETE", "/models/nope")
    finally:
        ts.stop()

    # 2. Defaults of 0.11.1+: model API off, token auth on.
    ts = TorchServe(work, store, model_api=False, token_auth=True, models=["pcam=pcam.mar"])
    try:
        bearer = {"Authorization": f"Bearer {ts.token}"}
        wait_ready(ts, "pcam", 1, bearer)
        record(ts, "token-missing", "GET", "/models")
        record(ts, "token-wrong", "GET", "/models", headers={"Authorization": "Bearer wrong"})
        record(ts, "token-list", "GET", "/models", headers=bearer)
        record(ts, "model-api-off-register", "POST", "/models?url=tissue.mar", headers=bearer)
        record(ts, "model-api-off-unregister", "DELETE", "/models/pcam", headers=bearer)
        inference = {"Authorization": f"Bearer {ts.keys['inference']['key']}"}
        record(ts, "token-predict-missing", "PUT", "/predictions/pcam", png, raw, port="inference")
        record(ts, "token-predict", "PUT", "/predictions/pcam", png, dict(raw, **inference), port="inference")
        key_file = {k: {kk: ("<redacted>" if kk == "key" else vv) for kk, vv in v.items()} for k, v in ts.keys.items()}
    finally:
        ts.stop()

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fixtures.json").write_text(json.dumps(fixtures, indent=1) + "\n")
    (OUT / "key_file.json").write_text(json.dumps(key_file, indent=2) + "\n")
    print(f"wrote {len(fixtures)} fixtures to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
