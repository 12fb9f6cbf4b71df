#!/usr/bin/env python3
"""Records a real TorchServe 0.12's model-store behaviour (register from URLs, scaling, versions,
register parameters, listener separation, token API, config snapshots and their restore, KServe
V1/V2 envelopes) into testdata/torchserve/store/ (developer script; the tests replay these fixtures
and never need TorchServe).

Needs torchserve==0.12.0, torch-model-archiver==0.12.0 and Java 17 beside `python`, and a release
build of scancer (for `scancer archive`).

    python examples/record_torchserve_store.py [--scancer target/release/scancer]

Writes:
- fixtures.json: records {"name", "method", "path", "request_headers", "status", "headers", "body"},
  like testdata/torchserve/fixtures.json (headers keep only content-type and www-authenticate;
  Authorization is never shown). Some records carry an extra "store" key: the sorted file names of
  the model store right after the request. "<URL>" in a path stands for the local HTTP server
  (http://127.0.0.1:<port>) and "<STORE>" for the model store's absolute path.
- observations.json: what is not an HTTP exchange (store listings, key_file.json's shape, snapshot
  file names, the restart with a missing archive, log lines).
- key_file.json: key_file.json after regenerating both keys, keys replaced by "<redacted>".
- snapshots/: every file TorchServe wrote to $LOG_LOCATION/config/, byte for byte (they hold the
  recording machine's absolute temp paths: model_store, workflow_store, python).

Each TorchServe runs in its own temp work dir (cwd, LOG_LOCATION, METRICS_LOCATION, TMPDIR/TEMP so
that the pid file and worker sockets are private) on free loopback ports, one at a time. Worker
pids, start times and memory are what TorchServe said during the recording.
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "testdata" / "torchserve" / "store"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exchange(port, method, path, body=b"", headers=None, timeout=300):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    kept = {k.lower(): v for k, v in response.getheaders() if k.lower() in ("content-type", "www-authenticate")}
    answer = (response.status, kept, response.read().decode(errors="replace"))
    connection.close()
    return answer


class KeyFile:
    """TorchServe's key_file.json in a server's work dir, and the header each key goes in."""

    def read_keys(self):
        self.keys = json.loads((self.work / "key_file.json").read_text())
        return self.keys

    def bearer(self, kind):
        return {"Authorization": f"Bearer {self.keys[kind]['key']}"} if self.token_auth else {}


class TorchServe(KeyFile):
    """One TorchServe in its own work dir. `config` lines go to work/config.properties, used with
    --ts-config (ts_config=True) or found by TorchServe in its cwd (ts_config=False)."""

    def __init__(self, work, name, store, *, config=(), ts_config=True, ncs=True, env=None):
        self.work = work / name
        self.work.mkdir()
        (self.work / "tmp").mkdir()
        self.store = store
        self.ports = {k: free_port() for k in ("inference", "management", "metrics", "grpc_i", "grpc_m")}
        lines = [f"inference_address=http://127.0.0.1:{self.ports['inference']}",
                 f"management_address=http://127.0.0.1:{self.ports['management']}",
                 f"metrics_address=http://127.0.0.1:{self.ports['metrics']}",
                 f"grpc_inference_port={self.ports['grpc_i']}",
                 f"grpc_management_port={self.ports['grpc_m']}", *config]
        (self.work / "config.properties").write_text("\n".join(lines) + "\n")
        self.ts_config = ts_config
        self.ncs = ncs
        self.token_auth = "disable_token_authorization=true" not in config
        self.env = dict(os.environ, LOG_LOCATION=str(self.work / "logs"), METRICS_LOCATION=str(self.work / "logs"),
                        TMPDIR=str(self.work / "tmp"), TEMP=str(self.work / "tmp"), **(env or {}))
        self.keys = None

    def command(self, store=None):
        command = ["torchserve", "--start", "--model-store", str(store or self.store)]
        if self.ncs:
            command.append("--ncs")
        if self.ts_config:
            command += ["--ts-config", str(self.work / "config.properties")]
        return command

    def start(self):
        subprocess.run(self.command(), check=True, env=self.env, cwd=self.work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 180
        while True:
            headers = {}
            if self.token_auth:
                try:
                    self.read_keys()
                    headers = self.bearer("management")
                except (OSError, ValueError, KeyError):
                    headers = None
            if headers is not None:
                try:
                    if exchange(self.ports["management"], "GET", "/models", headers=headers, timeout=10)[0] == 200:
                        return self
                except OSError:
                    pass
            if time.time() > deadline:
                sys.exit(f"TorchServe did not start; see {self.work / 'logs'}")
            time.sleep(0.5)

    def stop(self):
        # --foreground makes --stop wait for the JVM to exit (and write its shutdown snapshot).
        subprocess.run(["torchserve", "--stop", "--foreground"], env=self.env, cwd=self.work,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(ts, model, workers, headers=None, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, _, body = exchange(ts.ports["management"], "GET", f"/models/{model}", headers=headers)
        if status == 200 and sum(w["status"] == "READY" for w in json.loads(body)[0]["workers"]) >= workers:
            return True
        time.sleep(0.5)
    print(f"warning: {model} never had {workers} READY workers", file=sys.stderr)
    return False


class FileServer:
    """A local HTTP server for register-from-URL; it remembers the paths asked for."""

    def __init__(self, root):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                outer.requests.append({"path": self.path, "user-agent": self.headers.get("User-Agent")})
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scancer", default=str(ROOT / "target/release/scancer"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scancer-store-"))
    store = work / "store"
    store.mkdir()

    def archive(name, version, export):
        subprocess.run([args.scancer, "archive", "--model-name", name, "--version", version, "--serialized-file",
                        ROOT / "examples/pcam-classification.pt", "--config", ROOT / "examples/pcam-classification.toml",
                        "--export-path", export, "-f"], check=True, capture_output=True)

    archive("pcam", "1.0", store)
    # A second version of pcam, in its own folder so that the file name differs.
    (work / "v2").mkdir()
    archive("pcam", "2.0", work / "v2")
    shutil.move(work / "v2" / "pcam.mar", store / "pcam-2.0.mar")
    (store / "broken.mar").write_text("this is not a zip archive\n")
    www = work / "www"
    (www / "files").mkdir(parents=True)
    shutil.copy(store / "pcam.mar", www / "files" / "pcamurl.mar")
    shutil.copy(store / "pcam.mar", www / "files" / "pcamurl")
    (work / "elsewhere").mkdir()
    shutil.copy(store / "pcam.mar", work / "elsewhere" / "pcamfile.mar")
    files = FileServer(www)

    png = (ROOT / "examples/patches/patch-00.png").read_bytes()
    png_b64 = base64.b64encode(png).decode()
    png2 = (ROOT / "examples/patches/patch-01.png")
    png2_b64 = base64.b64encode(png2.read_bytes()).decode() if png2.exists() else png_b64
    raw = {"Content-Type": "application/octet-stream"}
    as_json = {"Content-Type": "application/json"}
    fixtures = []
    observations = []
    names = set()

    def listing(directory=store):
        return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).is_dir() else []

    def observe(name, value):
        observations.append({"name": name, "value": value})
        print(f"observed {name}", file=sys.stderr)

    def shown_path(path):
        return path.replace(files.url, "<URL>").replace(str(store), "<STORE>").replace(str(work), "<WORK>")

    def record(ts, name, method, path, body=b"", headers=None, port="management", show_store=False, timeout=300):
        assert name not in names, name
        names.add(name)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        try:
            status, kept, text = exchange(ts.ports[port], method, path, body, headers, timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            status, kept, text = None, {}, f"<no answer: {type(e).__name__}: {e}>"
        shown = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        entry = {"name": name, "method": method, "path": shown_path(path), "request_headers": shown,
                 "status": status, "headers": kept, "body": shown_path(text)}
        if port != "management":
            entry["port"] = port
        if show_store:
            entry["store"] = listing()
        fixtures.append(entry)
        print(f"{status} {name}: {method} {path}", file=sys.stderr)
        return status, text

    def save():
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "fixtures.json").write_text(json.dumps(fixtures, indent=1) + "\n")
        (OUT / "observations.json").write_text(json.dumps(observations, indent=1) + "\n")

    plain = ["enable_model_api=true", "disable_token_authorization=true"]

    # A. Model API on, no token auth, default_workers_per_model unset (so register defaults to 0 workers).
    ts = TorchServe(work, "ts-main", store, config=plain).start()
    try:
        # 1. Register from an http URL.
        url = f"{files.url}/files/pcamurl.mar"
        observe("store-before-url-register", listing())
        record(ts, "url-register", "POST", f"/models?url={url}&initial_workers=1&synchronous=true", show_store=True)
        record(ts, "url-list", "GET", "/models")
        record(ts, "url-describe", "GET", "/models/pcam")
        record(ts, "url-register-again", "POST", f"/models?url={url}&initial_workers=1&synchronous=true", show_store=True)
        record(ts, "url-unregister", "DELETE", "/models/pcam", show_store=True)
        record(ts, "url-register-query-string", "POST", f"/models?url={url}%3Fx%3D1&model_name=urlq&synchronous=true",
               show_store=True)
        record(ts, "url-describe-query-string", "GET", "/models/urlq")
        record(ts, "url-unregister-query-string", "DELETE", "/models/urlq", show_store=True)
        record(ts, "url-register-dotdot", "POST", f"/models?url={files.url}/files/../files/pcamurl.mar", show_store=True)
        record(ts, "url-register-dotdot-plain", "POST", "/models?url=../store/pcam.mar")
        record(ts, "url-register-404", "POST", f"/models?url={files.url}/files/missing.mar", show_store=True)
        record(ts, "url-register-no-extension", "POST", f"/models?url={files.url}/files/pcamurl&model_name=noext",
               show_store=True)
        record(ts, "register-absolute-path-outside-store", "POST",
               f"/models?url={work / 'elsewhere' / 'pcamfile.mar'}&model_name=abs", show_store=True)
        observe("file-server-requests", list(files.requests))
        for leftover in ("pcamurl", "pcamurl.mar"):
            if (store / leftover).exists():  # keep the rest of the run independent of what was left behind
                observe(f"removed-leftover-{leftover}", True)
                (store / leftover).unlink()

        # 2. Scale to zero.
        record(ts, "register-pcam", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "scale-zero", "PUT", "/models/pcam?min_worker=0&synchronous=true")
        record(ts, "describe-zero", "GET", "/models/pcam")
        record(ts, "predict-zero", "PUT", "/predictions/pcam", png, raw, port="inference")
        record(ts, "predict-zero-version", "PUT", "/predictions/pcam/1.0", png, raw, port="inference")
        record(ts, "ping-zero", "GET", "/ping", port="inference")
        record(ts, "scale-max-only", "PUT", "/models/pcam?max_worker=2")
        record(ts, "describe-max-only", "GET", "/models/pcam")
        wait_ready(ts, "pcam", 1)
        record(ts, "describe-max-only-ready", "GET", "/models/pcam")
        record(ts, "scale-version", "PUT", "/models/pcam/1.0?min_worker=1&synchronous=true")
        record(ts, "scale-version-query", "PUT", "/models/pcam?model_version=1.0&min_worker=1&max_worker=1&synchronous=true")
        record(ts, "scale-unknown-version", "PUT", "/models/pcam/9.9?min_worker=1&synchronous=true")
        record(ts, "scale-min-abc", "PUT", "/models/pcam?min_worker=abc&synchronous=true")
        record(ts, "describe-after-min-abc", "GET", "/models/pcam")
        record(ts, "scale-negative", "PUT", "/models/pcam?min_worker=-1&max_worker=-1&synchronous=true")
        record(ts, "scale-back-to-one", "PUT", "/models/pcam?min_worker=1&max_worker=1&synchronous=true")
        record(ts, "ping-one-worker", "GET", "/ping", port="inference")

        # 3. Versions.
        record(ts, "register-pcam-2", "POST", "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true")
        record(ts, "unregister-no-version-two-versions", "DELETE", "/models/pcam")
        record(ts, "unregister-unknown-version", "DELETE", "/models/pcam/9.9")
        record(ts, "set-default-unknown-model", "PUT", "/models/nope/1.0/set-default")
        record(ts, "set-default-2", "PUT", "/models/pcam/2.0/set-default")
        record(ts, "list-after-set-default", "GET", "/models")
        record(ts, "describe-after-set-default", "GET", "/models/pcam")
        record(ts, "unregister-no-version-default-2", "DELETE", "/models/pcam")
        record(ts, "predict-version-2", "PUT", "/predictions/pcam/2.0", png, raw, port="inference")
        record(ts, "predict-version-unknown", "PUT", "/predictions/pcam/9.9", png, raw, port="inference")
        record(ts, "predict-default-after-set-default", "PUT", "/predictions/pcam", png, raw, port="inference")

        # 5. Listener separation (and the KServe paths without an envelope).
        record(ts, "inference-port-list-models", "GET", "/models", port="inference")
        record(ts, "inference-port-describe", "GET", "/models/pcam", port="inference")
        record(ts, "management-port-predict", "PUT", "/predictions/pcam", png, raw)
        record(ts, "inference-port-metrics", "GET", "/metrics", port="inference")
        record(ts, "management-port-metrics", "GET", "/metrics")
        record(ts, "management-port-ping", "GET", "/ping")
        record(ts, "metrics-port-metrics", "GET", "/metrics", port="metrics")
        record(ts, "metrics-port-unknown", "GET", "/nope", port="metrics")
        record(ts, "metrics-port-ping", "GET", "/ping", port="metrics")
        record(ts, "metrics-port-models", "GET", "/models", port="metrics")
        record(ts, "inference-port-unknown", "GET", "/nope", port="inference")
        record(ts, "management-port-unknown", "GET", "/nope")
        record(ts, "no-envelope-v1-predict", "POST", "/v1/models/pcam:predict",
               {"instances": [{"data": png_b64}]}, as_json, port="inference")
        record(ts, "no-envelope-v1-ready-management", "GET", "/v1/models/pcam")
        record(ts, "no-envelope-v1-ready-inference", "GET", "/v1/models/pcam", port="inference")
        record(ts, "no-envelope-v2-infer", "POST", "/v2/models/pcam/infer",
               {"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [png_b64]}]}, as_json,
               port="inference")
        record(ts, "unregister-version-1", "DELETE", "/models/pcam/1.0", show_store=True)
        record(ts, "unregister-last-version", "DELETE", "/models/pcam", show_store=True)

        # 4. Register with parameters.
        record(ts, "register-params", "POST", "/models?url=pcam.mar&model_name=custom&batch_size=4&max_batch_delay=50"
               "&response_timeout=30&initial_workers=1&synchronous=true")
        record(ts, "describe-params", "GET", "/models/custom")
        record(ts, "register-json", "POST", "/models",
               {"url": "pcam.mar", "model_name": "jsonreg", "initial_workers": 1, "synchronous": True}, as_json)
        record(ts, "describe-json", "GET", "/models/jsonreg")
        record(ts, "register-json-minimal", "POST", "/models", {"url": "pcam.mar", "model_name": "jsonmin"}, as_json)
        record(ts, "describe-json-minimal", "GET", "/models/jsonmin")
        record(ts, "register-json-and-query", "POST", "/models?url=pcam.mar&model_name=queryname",
               {"url": "pcam.mar", "model_name": "bodyname"}, as_json)
        record(ts, "register-json-bad", "POST", "/models", b"{not json", as_json)
        record(ts, "register-no-synchronous", "POST", "/models?url=pcam.mar&model_name=nosync&initial_workers=1")
        record(ts, "register-async", "POST", "/models?url=pcam.mar&model_name=async&initial_workers=1&synchronous=false")
        record(ts, "ping-while-async-starting", "GET", "/ping", port="inference")
        record(ts, "describe-async-starting", "GET", "/models/async")
        wait_ready(ts, "async", 1)
        record(ts, "register-initial-workers-abc", "POST", "/models?url=pcam.mar&model_name=iwabc&initial_workers=abc")
        record(ts, "register-default-workers", "POST", "/models?url=pcam.mar&model_name=defworkers")
        record(ts, "register-broken", "POST", "/models?url=broken.mar&initial_workers=1&synchronous=true", show_store=True)
        record(ts, "register-broken-named", "POST", "/models?url=broken.mar&model_name=broken&initial_workers=0",
               show_store=True)
        record(ts, "describe-broken-named", "GET", "/models/broken")
        record(ts, "register-bad-runtime", "POST", "/models?url=pcam.mar&model_name=badrt&runtime=cobol")
        record(ts, "register-name-slash", "POST", "/models?url=pcam.mar&model_name=bad%2Fname&initial_workers=0")
        record(ts, "register-name-space", "POST", "/models?url=pcam.mar&model_name=a%20b&initial_workers=0")
        record(ts, "register-name-empty", "POST", "/models?url=pcam.mar&model_name=&initial_workers=0")
        record(ts, "list-odd-names", "GET", "/models")
        record(ts, "describe-name-space", "GET", "/models/a%20b")
        record(ts, "describe-name-slash", "GET", "/models/bad%2Fname")
        record(ts, "unregister-name-slash", "DELETE", "/models/bad%2Fname")
        record(ts, "unregister-name-space", "DELETE", "/models/a%20b")
        record(ts, "list-end-of-main", "GET", "/models")
        observe("store-end-of-main", listing())
    finally:
        ts.stop()
        save()

    # B. service_envelope=kserve and allowed_urls=file://.*
    ts = TorchServe(work, "ts-kserve", store, config=plain + ["service_envelope=kserve", "allowed_urls=file://.*"]).start()
    try:
        record(ts, "allowed-urls-http-refused", "POST", f"/models?url={files.url}/files/pcamurl.mar", show_store=True)
        record(ts, "allowed-urls-file-url-in-store", "POST", f"/models?url=file://{store}/pcam.mar&model_name=fileurl",
               show_store=True)
        record(ts, "allowed-urls-file-url-elsewhere", "POST",
               f"/models?url=file://{work}/elsewhere/pcamfile.mar&model_name=fileurl", show_store=True)
        record(ts, "allowed-urls-file-url-describe", "GET", "/models/fileurl")
        record(ts, "allowed-urls-file-url-unregister", "DELETE", "/models/fileurl", show_store=True)
        record(ts, "kserve-register", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "kserve-v1-predict", "POST", "/v1/models/pcam:predict",
               {"instances": [{"data": png_b64}]}, as_json, port="inference")
        record(ts, "kserve-v1-predict-two", "POST", "/v1/models/pcam:predict",
               {"instances": [{"data": png_b64}, {"data": png2_b64}]}, as_json, port="inference")
        record(ts, "kserve-v1-predict-b64", "POST", "/v1/models/pcam:predict",
               {"instances": [{"b64": png_b64}]}, as_json, port="inference")
        record(ts, "kserve-v1-predict-octet-stream", "POST", "/v1/models/pcam:predict",
               json.dumps({"instances": [{"data": png_b64}]}).encode(), raw, port="inference")
        record(ts, "kserve-v1-predict-unknown", "POST", "/v1/models/nope:predict",
               {"instances": [{"data": png_b64}]}, as_json, port="inference")
        record(ts, "kserve-v1-ready-inference", "GET", "/v1/models/pcam", port="inference")
        record(ts, "kserve-v1-ready-management", "GET", "/v1/models/pcam")
        record(ts, "kserve-v1-ready-management-unknown", "GET", "/v1/models/nope")
        record(ts, "kserve-predictions-raw", "PUT", "/predictions/pcam", png, raw, port="inference")
        record(ts, "kserve-predictions-json", "POST", "/predictions/pcam",
               {"instances": [{"data": png_b64}]}, as_json, port="inference")
    finally:
        ts.stop()
        save()

    # C. Token auth on, model API on, service_envelope=kservev2.
    ts = TorchServe(work, "ts-token", store, config=["enable_model_api=true", "service_envelope=kservev2"]).start()
    try:
        k0 = json.loads(json.dumps(ts.keys))
        observe("key-file-shape", {k: sorted(v) for k, v in k0.items()})
        observe("key-file-text-redacted",
                (ts.work / "key_file.json").read_text().replace(k0["management"]["key"], "<redacted>")
                .replace(k0["inference"]["key"], "<redacted>").replace(k0["API"]["key"], "<redacted>"))
        observe("key-file-mode", oct((ts.work / "key_file.json").stat().st_mode & 0o777))
        observe("key-lengths", {k: len(v["key"]) for k, v in k0.items()})
        api = {"Authorization": f"Bearer {k0['API']['key']}"}
        record(ts, "token-register", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true",
               headers=ts.bearer("management"))
        record(ts, "token-regen-management", "GET", "/token?type=management", headers=api)
        k1 = ts.read_keys()
        observe("token-regen-management-changed", {k: k0[k]["key"] != k1[k]["key"] for k in k0})
        observe("token-regen-management-expiry", {"before": k0["management"]["expiration time"],
                                                   "after": k1["management"]["expiration time"]})
        record(ts, "token-old-management-key", "GET", "/models",
               headers={"Authorization": f"Bearer {k0['management']['key']}"})
        record(ts, "token-new-management-key", "GET", "/models", headers=ts.bearer("management"))
        record(ts, "token-regen-inference", "GET", "/token?type=inference", headers=api)
        k2 = ts.read_keys()
        observe("token-regen-inference-changed", {k: k1[k]["key"] != k2[k]["key"] for k in k1})
        record(ts, "token-old-inference-key", "PUT", "/predictions/pcam", png,
               dict(raw, Authorization=f"Bearer {k1['inference']['key']}"), port="inference")
        record(ts, "token-new-inference-key-v2-infer", "POST", "/v2/models/pcam/infer",
               {"inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [png_b64]}]},
               dict(as_json, **ts.bearer("inference")), port="inference")
        record(ts, "kservev2-infer-with-id", "POST", "/v2/models/pcam/infer",
               {"id": "req-1", "inputs": [{"name": "input-0", "shape": [1], "datatype": "BYTES", "data": [png_b64]}]},
               dict(as_json, **ts.bearer("inference")), port="inference")
        record(ts, "kservev2-infer-uint8-list", "POST", "/v2/models/pcam/infer",
               {"inputs": [{"name": "input-0", "shape": [len(png)], "datatype": "UINT8", "data": list(png)}]},
               dict(as_json, **ts.bearer("inference")), port="inference")
        record(ts, "kservev2-infer-bytes-int-list", "POST", "/v2/models/pcam/infer",
               {"inputs": [{"name": "input-0", "shape": [len(png)], "datatype": "BYTES", "data": list(png)}]},
               dict(as_json, **ts.bearer("inference")), port="inference")
        record(ts, "kservev2-predictions-raw", "PUT", "/predictions/pcam", png,
               dict(raw, **ts.bearer("inference")), port="inference")
        record(ts, "token-wrong-api-key", "GET", "/token?type=management", headers={"Authorization": "Bearer wrong"})
        record(ts, "token-no-authorization", "GET", "/token?type=management")
        record(ts, "token-no-type", "GET", "/token", headers=api)
        record(ts, "token-bogus-type", "GET", "/token?type=bogus", headers=api)
        record(ts, "token-uppercase-type", "GET", "/token?type=MANAGEMENT", headers=api)
        record(ts, "token-with-management-key", "GET", "/token?type=management", headers=ts.bearer("management"))
        k3 = ts.read_keys()
        observe("token-failed-attempts-changed-keys", {k: k2[k]["key"] != k3[k]["key"] for k in k2})
        record(ts, "token-substring-in-query", "GET", "/models?x=/token", headers=ts.bearer("management"))
        record(ts, "token-on-inference-port", "GET", "/token?type=inference", headers=ts.bearer("inference"),
               port="inference")
        record(ts, "token-ping-no-token", "GET", "/ping", port="inference")
        record(ts, "token-ping-inference-key", "GET", "/ping", headers=ts.bearer("inference"), port="inference")
        record(ts, "token-management-with-inference-key", "GET", "/models", headers=ts.bearer("inference"))
        record(ts, "token-inference-with-management-key", "PUT", "/predictions/pcam", png,
               dict(raw, **ts.bearer("management")), port="inference")
        record(ts, "token-inference-with-api-key", "PUT", "/predictions/pcam", png, dict(raw, **api), port="inference")
        record(ts, "token-management-with-api-key", "GET", "/models", headers=api)
        record(ts, "token-bearer-lowercase", "GET", "/models",
               headers={"Authorization": f"bearer {ts.keys['management']['key']}"})
        record(ts, "token-metrics-port-no-token", "GET", "/nope", port="metrics")
        record(ts, "token-regen-post", "POST", "/token?type=inference", headers=api)
        ts.read_keys()
        key_file = {k: {kk: ("<redacted>" if kk == "key" else vv) for kk, vv in v.items()} for k, v in ts.keys.items()}
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "key_file.json").write_text(json.dumps(key_file, indent=2) + "\n")
    finally:
        ts.stop()
        observe("key-file-after-stop-exists", (ts.work / "key_file.json").exists())
        save()

    # D. Snapshots: no --ncs, no --ts-config; the ports come from ./config.properties in the cwd.
    shutil.rmtree(OUT / "snapshots", ignore_errors=True)
    ts = TorchServe(work, "ts-snapshot", store, config=plain, ts_config=False, ncs=False)
    observe("snapshot-start-command", [shown_path(str(c)) for c in ts.command()])
    ts.start()
    config_dir = ts.work / "logs" / "config"
    try:
        observe("snapshot-files-after-start", listing(config_dir))
        record(ts, "snap-register-1", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "snap-register-2", "POST", "/models?url=pcam-2.0.mar&initial_workers=1&synchronous=true")
        record(ts, "snap-scale-1", "PUT", "/models/pcam/1.0?min_worker=2&max_worker=2&synchronous=true")
        record(ts, "snap-set-default-2", "PUT", "/models/pcam/2.0/set-default")
        record(ts, "snap-describe-all-before", "GET", "/models/pcam/all")
        observe("snapshot-files-before-stop", listing(config_dir))
    finally:
        ts.stop()
    first_run = listing(config_dir)
    observe("snapshot-files-after-stop", first_run)
    (OUT / "snapshots").mkdir(parents=True, exist_ok=True)
    for f in first_run:
        shutil.copyfile(config_dir / f, OUT / "snapshots" / f)
    save()

    ts.start()
    try:
        wait_ready(ts, "pcam/1.0", 2)
        wait_ready(ts, "pcam/2.0", 1)
        observe("snapshot-files-after-restart", listing(config_dir))
        record(ts, "snap-restored-list", "GET", "/models")
        record(ts, "snap-restored-describe-all", "GET", "/models/pcam/all")
        record(ts, "snap-restored-describe", "GET", "/models/pcam")
        record(ts, "snap-restored-predict", "PUT", "/predictions/pcam", png, raw, port="inference")
    finally:
        ts.stop()
    observe("snapshot-files-after-second-stop", listing(config_dir))
    for f in listing(config_dir):
        shutil.copyfile(config_dir / f, OUT / "snapshots" / f)
    save()

    # The newest snapshot names pcam-2.0.mar, missing from this store.
    store2 = work / "store-missing"
    store2.mkdir()
    shutil.copy(store / "pcam.mar", store2 / "pcam.mar")
    log = ts.work / "logs" / "ts_log.log"
    log_size = log.stat().st_size if log.exists() else 0
    command = ts.command(store2) + ["--foreground"]
    started = time.time()
    try:
        run = subprocess.run(command, env=ts.env, cwd=ts.work, capture_output=True, text=True, timeout=120)
        outcome = {"launcher_rc": run.returncode, "seconds": round(time.time() - started, 1),
                   "stdout_tail": shown_path(run.stdout[-3000:]), "stderr_tail": shown_path(run.stderr[-3000:])}
    except subprocess.TimeoutExpired as e:
        outcome = {"launcher_rc": None, "timed_out": True, "stdout_tail": (e.stdout or b"")[-3000:].decode(errors="replace")}
        try:
            outcome["management_list"] = exchange(ts.ports["management"], "GET", "/models", timeout=10)
        except OSError as err:
            outcome["management_list"] = str(err)
        ts.stop()
    text = log.read_text(errors="replace")[log_size:] if log.exists() else ""
    lines = [shown_path(line) for line in text.splitlines()
             if any(w in line for w in ("napshot", "ERROR", "not found", "xception"))]
    outcome["ts_log_lines"] = list(dict.fromkeys(lines))[:40]
    outcome["command"] = [shown_path(str(c)) for c in command]
    observe("snapshot-restore-missing-mar", outcome)
    observe("snapshot-files-after-missing", listing(config_dir))
    # The failed start wrote an empty shutdown snapshot: start again with the full store.
    ts.start()
    try:
        observe("snapshot-files-after-start-following-failure", listing(config_dir))
        record(ts, "snap-after-failed-restore-list", "GET", "/models")
        record(ts, "snap-after-failed-restore-describe", "GET", "/models/pcam")
    finally:
        ts.stop()
    for f in listing(config_dir):
        shutil.copyfile(config_dir / f, OUT / "snapshots" / f)
    save()

    # E. TS_* environment overrides (enable_envvars_config=true in the config file).
    env = {"TS_SERVICE_ENVELOPE": "kserve", "TS_DEFAULT_RESPONSE_TIMEOUT": "77", "TS_ALLOWED_URLS": "file://.*"}
    ts = TorchServe(work, "ts-env", store, config=plain + ["enable_envvars_config=true"], env=env).start()
    try:
        observe("env-overrides-set", env)
        record(ts, "env-register", "POST", "/models?url=pcam.mar&initial_workers=1&synchronous=true")
        record(ts, "env-describe", "GET", "/models/pcam")
        record(ts, "env-v1-predict", "POST", "/v1/models/pcam:predict",
               {"instances": [{"data": png_b64}]}, as_json, port="inference")
        record(ts, "env-allowed-urls-ignored", "POST", f"/models?url={files.url}/files/pcamurl.mar&model_name=envurl",
               show_store=True)
        record(ts, "env-allowed-urls-ignored-unregister", "DELETE", "/models/envurl", show_store=True)
    finally:
        ts.stop()
        save()
    print(f"wrote {len(fixtures)} fixtures and {len(observations)} observations to {OUT}; work dir {work}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
