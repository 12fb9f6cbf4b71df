#!/usr/bin/env python3
"""Export scancer's test and example models and the PyTorch reference outputs.

Developer script (PyTorch 2.13 + torchvision 0.28 + Pillow, plus onnxruntime 1.32, onnx and onnxscript
for the ONNX export and its check, in a venv); the tests and CI never run it, they read what it commits
into examples/ and testdata/.

    python examples/export_test_models.py            # examples/ + testdata/ (committed)
    python examples/export_test_models.py --bench DIR  # full-width pcam model + 2,000 PNG patches
    python examples/export_test_models.py --keep       # keep the .pt and reference.json, add .pt2/.onnx

Every model is written three ways, all from the same nn.Module (eval mode, after BatchNorm calibration
and output rescaling), each with a dynamic batch dimension:

    NAME.pt2   torch.export.export, then AOTInductor (aoti_compile_and_package, freezing=True), compiled
               under torch.set_num_threads(1): scancer runs each forward pass on one thread, several
               model instances side by side. This is the format to prefer; its shared library is
               built for any x86-64 CPU with AVX2 (-march=x86-64-v3, 256-bit vectors), not for this
               machine's own (Inductor's default, -march=native, could stop another CPU with SIGILL).
    NAME.onnx  torch.onnx.export(dynamo=True), the exporter's default opset, weights inside the file;
               for ONNX Runtime.
    NAME.pt    torch.jit.trace (TorchScript): the legacy format, kept for older deployments.

The BatchNorm calibration, the output rescaling and the references are float32 arithmetic, and
another CPU (its instruction set, hence other oneDNN/MKL kernels) rounds them differently: run on a
machine other than the one that made the committed files, the script gives BatchNorm statistics and a
last layer that differ in the last bits, and reference logits up to ~2e-5 apart. --keep keeps the
committed .pt files and testdata/reference.json as they are and exports the .pt2 and .onnx from the
weights of those .pt files (the random draws are the same either way, so the other fixtures are too).

Before it exits the script checks that the .pt2 (aoti_load_package) and the .onnx (ONNX Runtime, CPU)
answer every reference input like the eager module, alone and inside a batch of 16: probabilities
within 1e-5, logits within 1e-5 relative to their magnitude (at least 1e-5); it fails otherwise.

Models use seeded random weights with non-trivial BatchNorm statistics: they exercise exactly the code
paths of a trained model, but their answers mean nothing medically.
"""

import argparse
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
import torch._inductor.utils  # aoti_compile_and_package, aoti_load_package, utils.fresh_cache
import torch.nn as nn
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent
# As scancer runs them: an AOTInductor package checks its input's shape against its guards.
os.environ["AOTI_RUNTIME_CHECK_INPUTS"] = "1"
SEED = 20261127


class ModelCNN(nn.Module):
    """Scancer's pcam-classification network (see scancer-models.md); c = 16 in production."""

    def __init__(self, c=16):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2, 2)]

        self.features = nn.Sequential(*block(3, c), *block(c, 2 * c), *block(2 * c, 4 * c), *block(4 * c, 8 * c))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(288 * c, 32 * c), nn.BatchNorm1d(32 * c), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(32 * c, 16 * c), nn.BatchNorm1d(16 * c), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(16 * c, 8 * c), nn.BatchNorm1d(8 * c), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(8 * c, 1),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class TissueClassifier(nn.Module):
    """A small multiclass network: 3x64x64 -> 4 logits."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
        )

    def forward(self, x):
        return self.net(x)


class TissueSegmenter(nn.Module):
    """A small fully convolutional segmenter: 1x32x32 grayscale -> 3x32x32 logits."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1),
        )

    def forward(self, x):
        return self.net(x)


def calibrate_batchnorm(model, sample):
    """Give every BatchNorm the running statistics of `sample` (as training would) and a random affine,
    so activations keep a healthy spread through the network instead of collapsing to a constant."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration pass
            m.train()
            n = m.num_features
            m.weight.data.copy_(torch.rand(n) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n) * 0.1)
    with torch.no_grad():
        model(sample)
    model.eval()


def export(model, example_shape, path, sample, keep=False):
    """Trace exactly as Scancer does and save. Before that, rescale the last layer so that the outputs
    over `sample` spread with a standard deviation of 2 around 0: random deep networks otherwise answer
    almost the same logit for every image, and a parity test on such outputs could not fail.
    With `keep`, the existing .pt stays and the module takes its weights instead.
    Returns the TorchScript model as loaded from the .pt and the module."""
    model.eval()
    calibrate_batchnorm(model, sample)
    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    with torch.inference_mode():
        out = model(sample)
        centre = out.transpose(0, 1).flatten(1).median(dim=1).values
        scale = 2.0 / out.std().item()
        print(f"{path.name}: output std {out.std().item():.3g} before rescaling")
    last.weight.data *= scale
    last.bias.data = (last.bias.data - centre) * scale
    example = torch.rand(*example_shape)  # drawn with or without keep: the fixtures depend on it
    if keep:
        model.load_state_dict(torch.jit.load(str(path)).state_dict())
    else:
        traced = torch.jit.trace(model, example)
        path.parent.mkdir(parents=True, exist_ok=True)
        traced.save(str(path))
    # The .pt2 and .onnx beside it, from the same module. fork_rng: whatever the exporters draw from
    # torch's generator is put back, so the models and fixtures made after this one stay as they were.
    with torch.random.fork_rng(devices=[]):
        export_pt2(model, sample[:16], path.with_suffix(".pt2"))
        export_onnx(model, sample[:4], path.with_suffix(".onnx"))
    return torch.jit.load(str(path)).eval(), model


def batch_dim():
    """The dynamic batch dimension: any size from 1 up. The example batch is 4, not 1: torch.export
    would specialise on a size-1 example (0 and 1 are always specialised). AOTInductor narrows it
    further (below)."""
    return torch.export.Dim("batch", min=1)


def export_pt2(model, example, path):
    """torch.export with a dynamic batch, then AOTInductor with the weights frozen into the kernels.
    Compiled with one thread in effect: Inductor sizes the OpenMP parallelism of its generated C++
    kernels by torch.get_num_threads() at compile time (with 1 it emits no `#pragma omp parallel`),
    and scancer runs each forward pass on one thread, several model instances side by side. The
    convolutions and matrix products stay calls into libtorch (oneDNN/MKL), which use the threads of the
    process that runs the model. The shared library inside is built for x86-64-v3 (AVX2, FMA, BMI2)
    with AVX2 vectors (AOTI_CPU_ISA AVX2 in its metadata), whatever the CPU that builds it: Inductor's
    default, -march=native and the widest vectors there, would tie the package to this machine.
    The example batch is 16, scancer's batch size: AOTInductor keeps the guards its compilation added
    as the package's input checks, and a CPU convolution's backend (hence the layout its output is
    assumed to have) depends on whether the batch is at least 16, so a package compiled from a
    smaller example takes batches of 2 to 15 only, and this one takes 16 and more.
    A fresh Inductor cache each time: from a reused one, Inductor takes its generated C++ sources and
    appends the compile commands to them once more, so every re-export would grow the package."""
    ep = torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim()},))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path.unlink(missing_ok=True)
        with torch._inductor.utils.fresh_cache():
            torch._inductor.aoti_compile_and_package(
                ep, package_path=str(path),
                inductor_configs={"freezing": True, "cpp.march": "x86-64-v3", "cpp.simdlen": 256})
    finally:
        torch.set_num_threads(threads)
    print(f"{path.name}: {path.stat().st_size:,} bytes")


def export_onnx(model, example, path):
    """torch.onnx.export (dynamo) with a dynamic batch, the exporter's default opset, one self-contained
    file: the weights are embedded, no external .data file. The exporter's per-node Python stack traces
    (paths of this machine, line numbers of this script) are left out, so a re-export gives the same bytes."""
    import onnx

    data = path.with_name(path.name + ".data")
    for stale in (path, data):
        stale.unlink(missing_ok=True)
    torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False,
                      dynamic_shapes=({0: batch_dim()},), input_names=["input"], output_names=["output"])
    proto = onnx.load(str(path))  # also reads an external .data file, should the exporter have written one
    for node in proto.graph.node:
        kept = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    data.unlink(missing_ok=True)
    onnx.checker.check_model(proto)
    opset = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    print(f"{path.name}: {path.stat().st_size:,} bytes, opset {opset}")


def check_parity(name, module, path, inputs, probabilities, tolerance=1e-5):
    """The .pt2 and the .onnx beside `path` against the eager `module` on every input (each 1xCxHxW):
    alone (batch 1; not the .pt2, which takes 16 and more), and inside a batch of 16 where the input sits at row 0 and row 8 and the other rows
    hold the other inputs. Also the TorchScript .pt for the record. Prints the largest absolute
    differences of logits and of probabilities. Returns False if a probability differs by more than
    `tolerance`, or a logit by more than `tolerance` times max(1, |eager logit|): float32 logits of
    magnitude ~5 already differ by ~1e-5 between the eager module's own batch-1 and batch-16 answers
    (other convolution kernels), so for logits the bound is relative."""
    import onnxruntime as ort

    aoti = torch._inductor.aoti_load_package(str(path.with_suffix(".pt2")))
    session = ort.InferenceSession(str(path.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
    onnx_input = session.get_inputs()[0].name
    script = torch.jit.load(str(path)).eval()
    runners = {
        "pt2": aoti,
        "onnx": lambda x: torch.from_numpy(session.run(None, {onnx_input: x.numpy()})[0]).float(),
        "pt": script,
    }
    with torch.inference_mode():
        eager = [module(x) for x in inputs]
    ok = True
    for fmt, run in runners.items():
        worst_logit = worst_relative = worst_prob = 0.0
        with torch.inference_mode():
            for i, x in enumerate(inputs):
                others = [j for j in range(len(inputs)) if j != i] or [i]
                rows = [others[k % len(others)] for k in range(16)]
                rows[0] = rows[8] = i
                # A package takes only the batch sizes its checks allow (16 and more, see export_pt2).
                pairs = [] if fmt == "pt2" else [(run(x), eager[i])]
                batch = run(torch.cat([inputs[j] for j in rows]))
                pairs += [(batch[r:r + 1], eager[j]) for r, j in enumerate(rows)]
                for got, want in pairs:
                    assert got.shape == want.shape, (fmt, got.shape, want.shape)
                    diff = (got - want).abs()
                    worst_logit = max(worst_logit, diff.max().item())
                    worst_relative = max(worst_relative, (diff / want.abs().clamp(min=1)).max().item())
                    worst_prob = max(worst_prob, (probabilities(got) - probabilities(want)).abs().max().item())
        bad = fmt != "pt" and max(worst_relative, worst_prob) > tolerance
        ok &= not bad
        print(f"parity {name:>12} {fmt:>4} vs eager: max |diff| logits {worst_logit:.3g} "
              f"(relative {worst_relative:.3g}), probabilities {worst_prob:.3g} over {len(inputs)} inputs, "
              f"batch 1 and 16"
              + ("  FAIL" if bad else ""))
    return ok


def he_patch(rng, size=96):
    """A synthetic H&E-like patch: pink stroma, purple nuclei, some white space, noise."""
    img = np.empty((size, size, 3), np.float64)
    img[:] = [228, 170, 200] + rng.normal(0, 8, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(0, 40)):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(2, 7)
        m = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[m] = [95, 55, 145] + rng.normal(0, 12, 3)
    if rng.random() < 0.3:
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(10, 30)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = [245, 242, 245]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def png_rgb16(path, rgb8):
    """A 16-bit RGB PNG with every sample v * 257 (Pillow cannot write 16-bit RGB)."""
    h, w, _ = rgb8.shape
    data = (rgb8.astype(np.uint16) * 257).astype(">u2").tobytes()
    raw = b"".join(b"\x00" + data[y * w * 6:(y + 1) * w * 6] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_declared(path, w, h):
    """A tiny PNG that declares w x h pixels (a decompression-bomb header)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def write_fixtures(rng, images):
    images.mkdir(parents=True, exist_ok=True)
    rgb = he_patch(rng)
    Image.fromarray(rgb).save(images / "patch-rgb.png")
    alpha = rng.integers(0, 256, (96, 96, 1), dtype=np.uint8)
    Image.fromarray(np.concatenate([he_patch(rng), alpha], axis=2), "RGBA").save(images / "patch-rgba.png")
    Image.fromarray(he_patch(rng)).quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(images / "patch-palette.png")
    Image.fromarray(he_patch(rng)).convert("L").save(images / "patch-gray.png")
    Image.fromarray(he_patch(rng)).convert("LA").save(images / "patch-gray-alpha.png")
    png_rgb16(images / "patch-rgb16.png", rgb)
    Image.fromarray(he_patch(rng)).save(images / "patch.tif")
    Image.fromarray(he_patch(rng)).save(images / "patch.bmp")
    Image.fromarray(he_patch(rng)).save(images / "patch.webp", lossless=True)
    Image.fromarray(he_patch(rng)).save(images / "patch.jpg", quality=92)
    Image.fromarray(he_patch(rng, 160)[:, 17:147]).save(images / "tall-130x160.png")
    Image.fromarray(np.concatenate([he_patch(rng, 80)] * 3, axis=1)[:, :203]).save(images / "wide-203x80.png")
    Image.fromarray(he_patch(rng, 50)).save(images / "small-50x50.png")
    # Broken inputs: each must get exactly one error record.
    (images / "empty.png").write_bytes(b"")
    good = (images / "patch-rgb.png").read_bytes()
    (images / "truncated.png").write_bytes(good[: len(good) // 2])
    (images / "not-an-image.png").write_bytes(b"patient notes, not pixels\n")
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 400, dtype=np.uint8)))
    png_declared(images / "bomb-100000x100000.png", 100_000, 100_000)


def tensor_from(pil, tf):
    return tf(pil).unsqueeze(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", type=Path, help="write the full-width model and 2,000 patches here instead")
    ap.add_argument("--patches", type=int, default=2000)
    ap.add_argument("--keep", action="store_true",
                    help="keep the existing .pt files and reference.json; export .pt2 and .onnx from the .pt weights")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    pcam_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    if args.bench:
        out = args.bench
        (out / "patches").mkdir(parents=True, exist_ok=True)
        patches = [he_patch(rng) for _ in range(args.patches)]
        for i, p in enumerate(patches):
            Image.fromarray(p).save(out / "patches" / f"patch-{i:05d}.png")
        sample = torch.cat([pcam_tf(Image.fromarray(he_patch(rng))).unsqueeze(0) for _ in range(64)])
        _, module = export(ModelCNN(16), (1, 3, 96, 96), out / "pcam-classification.pt", sample,
                           args.keep)
        print(f"wrote {out}/pcam-classification.{{pt,pt2,onnx}} and {len(patches)} patches")
        if not check_parity("pcam-c16", module, out / "pcam-classification.pt", list(sample[:16].split(1)),
                            torch.sigmoid):
            sys.exit("the .pt2 or .onnx export does not match the eager model")
        return

    # The example: pcam-classification at width c = 4 (small enough to commit) and 12 patches.
    examples = ROOT / "examples"
    (examples / "patches").mkdir(parents=True, exist_ok=True)
    demo = [he_patch(rng) for _ in range(12)]
    for i, p in enumerate(demo):
        Image.fromarray(p).save(examples / "patches" / f"patch-{i:02d}.png")
    sample = torch.cat([pcam_tf(Image.fromarray(he_patch(rng))).unsqueeze(0) for _ in range(64)])
    pcam, pcam_module = export(ModelCNN(4), (1, 3, 96, 96), examples / "pcam-classification.pt", sample,
                               args.keep)

    multi_tf = transforms.Compose([
        transforms.Resize(72), transforms.CenterCrop(64), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    seg_tf = transforms.Compose([
        transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize([0.5], [0.25]),
    ])
    images = ROOT / "testdata" / "images"
    write_fixtures(rng, images)
    models = ROOT / "testdata" / "models"
    he = [Image.fromarray(he_patch(rng, 64)) for _ in range(32)]
    multi, multi_module = export(TissueClassifier(), (1, 3, 64, 64), models / "tissue-multiclass.pt",
                                 torch.cat([tensor_from(p, multi_tf) for p in he]), args.keep)
    seg, seg_module = export(TissueSegmenter(), (1, 1, 32, 32), models / "tissue-segmentation.pt",
                             torch.cat([tensor_from(p.convert("L"), seg_tf) for p in he]), args.keep)

    # The segmenter exported to ONNX with its batch dimension fixed at 4 (no dynamic_shapes): scancer
    # must say plainly that it takes batches of exactly 4.
    with torch.random.fork_rng(devices=[]):
        fixed = models / "fixed-batch-4.onnx"
        torch.onnx.export(seg_module, (torch.zeros(4, 1, 32, 32),), str(fixed), dynamo=True,
                          external_data=False, input_names=["input"], output_names=["output"])
        fixed.with_name(fixed.name + ".data").unlink(missing_ok=True)
        (models / "fixed-batch-4.toml").write_text((models / "tissue-segmentation.toml").read_text())

    # More JPEG flavours, from their own random stream so the fixtures above stay as they were.
    jpeg_rng = np.random.default_rng(SEED + 1)
    Image.fromarray(he_patch(jpeg_rng)).convert("L").save(images / "patch-gray.jpg", quality=90)
    Image.fromarray(he_patch(jpeg_rng)).save(images / "patch-progressive.jpg", quality=85, progressive=True)
    Image.fromarray(he_patch(jpeg_rng)).convert("CMYK").save(images / "patch-cmyk.jpg", quality=95)
    whole = (images / "patch.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(whole[: len(whole) * 2 // 3])

    # References: Pillow decode + convert, torchvision transforms, the TorchScript model, batch 1.
    ref = {"pcam": {}, "multiclass": {}, "segmentation": {}, "image_classifier": {}}
    pcam_inputs = [f"examples/patches/patch-{i:02d}.png" for i in range(12)] + [
        f"testdata/images/{n}" for n in
        ["patch-rgb.png", "patch-rgba.png", "patch-palette.png", "patch-gray.png", "patch-gray-alpha.png",
         "patch.tif", "patch.bmp", "patch.webp", "patch.jpg", "patch-gray.jpg", "patch-progressive.jpg",
         "patch-cmyk.jpg"]]
    with torch.inference_mode():
        for rel in pcam_inputs:
            logit = pcam(tensor_from(Image.open(ROOT / rel).convert("RGB"), pcam_tf)).item()
            prob = torch.sigmoid(torch.tensor([logit], dtype=torch.float32)).item()
            ref["pcam"][rel] = {"logit": logit, "probability": prob}
        for rel in ["testdata/images/tall-130x160.png", "testdata/images/wide-203x80.png",
                    "testdata/images/small-50x50.png", "testdata/images/patch-rgb.png"]:
            x = tensor_from(Image.open(ROOT / rel).convert("RGB"), multi_tf)
            ref["multiclass"][rel] = {"probabilities": torch.softmax(multi(x), dim=1)[0].tolist()}
        # TorchServe's built-in image_classifier on the multiclass model (it pools any input size),
        # as testdata/mar/tissue.mar runs it: Resize(256), CenterCrop(224), ImageNet normalisation.
        ic_tf = transforms.Compose([
            transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])
        for rel in ["testdata/images/tall-130x160.png", "testdata/images/wide-203x80.png",
                    "testdata/images/patch.jpg"]:
            x = tensor_from(Image.open(ROOT / rel).convert("RGB"), ic_tf)
            ref["image_classifier"][rel] = {"probabilities": torch.softmax(multi(x), dim=1)[0].tolist()}
        for rel in ["testdata/images/patch-rgb.png", "testdata/images/patch-gray.png",
                    "testdata/images/small-50x50.png"]:
            x = tensor_from(Image.open(ROOT / rel).convert("L"), seg_tf)
            logits = seg(x)[0]
            mask = logits.argmax(dim=0)
            ref["segmentation"][rel] = {
                "mask": mask.flatten().tolist(),
                "probabilities": torch.softmax(logits, dim=0).flatten().tolist(),
            }
    if args.keep:
        print("wrote examples/ and testdata/ (kept the .pt files and testdata/reference.json)")
    else:
        (ROOT / "testdata" / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
        print("wrote examples/ and testdata/")

    # The .pt2 and .onnx exports against the eager modules on the reference inputs above (the
    # image_classifier ones excepted: 224x224, and only the batch dimension of those exports is dynamic).
    ok = check_parity("pcam", pcam_module, examples / "pcam-classification.pt",
                      [tensor_from(Image.open(ROOT / rel).convert("RGB"), pcam_tf) for rel in ref["pcam"]],
                      torch.sigmoid)
    ok &= check_parity("multiclass", multi_module, models / "tissue-multiclass.pt",
                       [tensor_from(Image.open(ROOT / rel).convert("RGB"), multi_tf) for rel in ref["multiclass"]],
                       lambda logits: torch.softmax(logits, dim=1))
    ok &= check_parity("segmentation", seg_module, models / "tissue-segmentation.pt",
                       [tensor_from(Image.open(ROOT / rel).convert("L"), seg_tf) for rel in ref["segmentation"]],
                       lambda logits: torch.softmax(logits, dim=1))
    if not ok:
        sys.exit("the .pt2 or .onnx exports do not match the eager models")


if __name__ == "__main__":
    main()
