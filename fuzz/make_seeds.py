#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into fuzz/seeds/<target>/ (committed; the fuzzer's growing
corpus goes to fuzz/corpus/, which is not). Needs Pillow (the developer venv): run from the repository
root as `python fuzz/make_seeds.py`. The regression test replays the seeds too, so each must pass."""

import base64
import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"

CONFIG = b"""[input]
height = 96
width = 96
mean = [0.5, 0.5, 0.5]
std = [0.5, 0.5, 0.5]
resize = "reject"
[output]
kind = "binary"
labels = ["normal", "metastatic"]
"""


def write(target, name, data):
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def manifest(name="pcam", handler="image_classifier", **extra):
    model = {"modelName": name, "serializedFile": "model.pt", "handler": handler, "modelVersion": "1.0"}
    model.update(extra)
    return json.dumps({"createdOn": "27/11/2026 08:16:08", "runtime": "python", "model": model,
                       "archiverVersion": "0.12.0"}, indent=2).encode()


def zipped(members, method=zipfile.ZIP_DEFLATED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 11, 27, 0, 0, 0)), data)
    return out.getvalue()


def tgz(members, top="pcam"):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as t:
            for name, data in members.items():
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def archives():
    model = b"PK\x03\x04 not really TorchScript"
    labels = json.dumps({"0": "normal", "1": ["n1", "metastatic"]}).encode()
    classifier = {"MAR-INF/MANIFEST.json": manifest(), "model.pt": model, "index_to_name.json": labels}
    configured = {"MAR-INF/MANIFEST.json": manifest(handler="scancer_handler.py"), "model.pt": model,
                  "scancer-handler.toml": CONFIG}
    write("archive", "classifier.mar", zipped(classifier))
    write("archive", "configured.mar", zipped(configured))
    write("archive", "stored.mar", zipped(configured, zipfile.ZIP_STORED))
    write("archive", "configured.tar.gz", tgz(configured))
    write("archive", "eager.mar", zipped({"MAR-INF/MANIFEST.json": manifest(modelFile="model.py"),
                                          "model.pt": model, "model.py": b"import torch\n"}))
    write("archive", "manifest.json", manifest())


def configs():
    for path in sorted((ROOT / "testdata").glob("**/*.toml")):
        write("handler_config", path.name, path.read_bytes())
    write("handler_config", "pcam.toml", CONFIG)


def encoded(image, fmt, **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def images():
    """Small images of every format and mode; the first byte picks the fuzz configuration."""
    rgb = Image.radial_gradient("L").resize((24, 20)).convert("RGB")
    pcam = Image.merge("RGB", [Image.linear_gradient("L").resize((96, 96))] * 3)
    cases = {
        "rgb.png": (1, encoded(rgb, "PNG")),
        "pcam.png": (0, encoded(pcam, "PNG", optimize=True)),
        "pcam.jpg": (0, encoded(pcam, "JPEG", quality=50)),
        "gray.png": (2, encoded(rgb.convert("L"), "PNG")),
        "gray-alpha.png": (1, encoded(rgb.convert("LA"), "PNG")),
        "palette.png": (1, encoded(rgb.convert("P"), "PNG")),
        "rgba.png": (2, encoded(rgb.convert("RGBA"), "PNG")),
        "rgb16.png": (1, encoded(rgb.convert("I;16"), "PNG")),
        "baseline.jpg": (1, encoded(rgb, "JPEG", quality=80)),
        "progressive.jpg": (2, encoded(rgb, "JPEG", progressive=True)),
        "cmyk.jpg": (1, encoded(rgb.convert("CMYK"), "JPEG")),
        "gray.jpg": (2, encoded(rgb.convert("L"), "JPEG")),
        "image.tif": (1, encoded(rgb, "TIFF")),
        "deflate.tif": (2, encoded(rgb, "TIFF", compression="tiff_adobe_deflate")),
        "image.bmp": (1, encoded(rgb, "BMP")),
        "image.webp": (1, encoded(rgb, "WEBP", lossless=True)),
        "lossy.webp": (2, encoded(rgb, "WEBP", quality=50)),
        "image.gif": (1, encoded(rgb, "GIF")),
        "segmentation.png": (3, encoded(rgb, "PNG")),
    }
    for name, (pick, data) in cases.items():
        write("image", name, bytes([pick]) + data)
    return encoded(pcam, "PNG", optimize=True)


def requests(png):
    basic = "Basic " + base64.b64encode(b"pathologist:slides").decode()
    bearer = "Bearer fuzz-token"

    def req(method, path, auth=None, body=b"", headers=()):
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        if auth:
            head.append(f"Authorization: {auth}")
        head += list(headers)
        if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
            head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    boundary = "scancerboundary"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"p.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(png[i:i + 1000]), png[i:i + 1000])
                       for i in range(0, len(png), 1000)) + b"0\r\n\r\n"
    infer = json.dumps({"inputs": [{"name": "input__0", "shape": [1, 1, 32, 32], "datatype": "FP32",
                                    "data": [0.25] * 1024}]}).encode()
    infer_bytes = json.dumps({"inputs": [{"name": "input__0", "shape": [1], "datatype": "BYTES",
                                          "data": [base64.b64encode(png).decode()]}]}).encode()
    cases = {
        "ping": req("GET", "/ping"),
        "models": req("GET", "/models?limit=1&next_page_token=1", basic),
        "describe-all": req("GET", "/models/pcam/all", bearer),
        "ping-head": req("HEAD", "/ping"),
        "predict-raw": req("PUT", "/predictions/pcam", bearer, png),
        "predict-version-details": req("POST", "/predictions/pcam/2.0?details=true", basic, png),
        "predict-multipart": req("POST", "/predictions/pcam", basic, form,
                                 [f"Content-Type: multipart/form-data; boundary={boundary}"]),
        "predict-chunked": req("PUT", "/predictions/pcam", bearer, chunked,
                               ["Transfer-Encoding: chunked", "Expect: 100-continue"]),
        "kserve-infer-fp32": req("POST", "/v2/models/raw/infer", bearer, infer,
                                 ["Content-Type: application/json"]),
        "kserve-infer-bytes": req("POST", "/v2/models/pcam/versions/1.0/infer", basic, infer_bytes),
        "kserve-metadata": req("GET", "/v2/models/pcam", basic) + req("GET", "/v2/health/ready"),
        "pipelined": req("GET", "/ping") + req("GET", "/models", basic) + req("GET", "/v2", bearer),
        "metrics": req("GET", "/metrics", basic),
        "predict-multiclass": req("PUT", "/predictions/tissue", bearer, png),
        "predict-segmentation": req("PUT", "/predictions/mask", bearer, png)
        + req("POST", "/predictions/mask?details=1", basic, png),
        "kserve-infer-mask": req("POST", "/v2/models/mask/infer", bearer, json.dumps(
            {"inputs": [{"name": "input__0", "shape": [1, 1, 16, 16], "datatype": "FP32",
                         "data": [k / 256 for k in range(256)]}]}).encode()),
        "unauthorized": req("GET", "/models", "Basic bm9ib2R5Om5vdGhpbmc="),
        "http10": b"GET /ping HTTP/1.0\r\n\r\n",
    }
    for name, data in cases.items():
        write("serve_http", name, data)


def answers():
    fixtures = json.loads((ROOT / "testdata" / "torchserve" / "fixtures.json").read_text())
    statuses = [200, 200, 200, 200, 201, 202, 400, 401, 404, 405, 500, 503]

    def piece(status, body):
        return bytes([statuses.index(status) if status in statuses else 0]) + body.encode()

    for k in range(0, len(fixtures), 4):
        group = fixtures[k:k + 4]
        data = b"\xff".join(piece(f["status"], f["body"]) for f in group)
        write("store_answers", f"fixtures-{k // 4:02}", data)


def slides():
    # The slide readers' own test slides (PNG, striped, tiled and BigTIFF) and patches in the other
    # PNG and TIFF sample layouts, as they are.
    for name in ["tissue.png", "tissue-strips.tif", "tissue-tiled.tif", "tissue-bigtiff.tif"]:
        write("slide", name, (ROOT / "testdata" / "slides" / name).read_bytes())
    for name in ["patch-rgb16.png", "patch-palette.png", "patch-gray-alpha.png", "patch-rgba.png", "patch.tif"]:
        write("slide", name, (ROOT / "testdata" / "images" / name).read_bytes())


if __name__ == "__main__":
    slides()
    archives()
    configs()
    answers()
    requests(images())
