#!/usr/bin/env python3
"""Export scancer's test and example models and the PyTorch reference outputs.

Developer script (PyTorch 2.13 + torchvision 0.28 + Pillow in a venv); the tests and CI never run it,
they read what it commits into examples/ and testdata/.

    python examples/export_test_models.py            # examples/ + testdata/ (committed)
    python examples/export_test_models.py --bench DIR  # full-width pcam model + 2,000 PNG patches

Models use seeded random weights with non-trivial BatchNorm statistics: they exercise exactly the code
paths of a trained model, but their answers mean nothing medically.
"""

import argparse
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent
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


def export(model, example_shape, path, sample):
    """Trace exactly as Scancer does and save. Before that, rescale the last layer so that the outputs
    over `sample` spread with a standard deviation of 2 around 0: random deep networks otherwise answer
    almost the same logit for every image, and a parity test on such outputs could not fail."""
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
    traced = torch.jit.trace(model, torch.rand(*example_shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(path))
    return torch.jit.load(str(path)).eval()


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
        export(ModelCNN(16), (1, 3, 96, 96), out / "pcam-classification.pt", sample)
        print(f"wrote {out}/pcam-classification.pt and {len(patches)} patches")
        return

    # The example: pcam-classification at width c = 4 (small enough to commit) and 12 patches.
    examples = ROOT / "examples"
    (examples / "patches").mkdir(parents=True, exist_ok=True)
    demo = [he_patch(rng) for _ in range(12)]
    for i, p in enumerate(demo):
        Image.fromarray(p).save(examples / "patches" / f"patch-{i:02d}.png")
    sample = torch.cat([pcam_tf(Image.fromarray(he_patch(rng))).unsqueeze(0) for _ in range(64)])
    pcam = export(ModelCNN(4), (1, 3, 96, 96), examples / "pcam-classification.pt", sample)

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
    multi = export(TissueClassifier(), (1, 3, 64, 64), models / "tissue-multiclass.pt",
                   torch.cat([tensor_from(p, multi_tf) for p in he]))
    seg = export(TissueSegmenter(), (1, 1, 32, 32), models / "tissue-segmentation.pt",
                 torch.cat([tensor_from(p.convert("L"), seg_tf) for p in he]))

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
    (ROOT / "testdata" / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    print("wrote examples/ and testdata/")


if __name__ == "__main__":
    main()
