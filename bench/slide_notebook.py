#!/usr/bin/env python3
"""The Scancer WSI notebook's algorithm as a script (the baseline of bench/slides.py).

Follows ../shared/reference/scancer-models.md step by step: read the slide as RGB, pad right and
bottom to a multiple of the window with white, tissue mask from the saturation of every 16th pixel
resized back to full size (a full-size float64 array), one model call per tissue window on the CPU,
each window's probability filled into a full-size float64 map, Gaussian smoothing, matplotlib's
plasma, PNG. Unlike the notebook it normalises as the model's handler does (ToTensor, then
Normalize(0.5, 0.5)), so that its probabilities can be compared with scancer's; and it upsamples the
saturation by repetition, so that a window's mean is the mean of its samples, as scancer computes it.

    python bench/slide_notebook.py MODEL.pt SLIDE OUT.png TILES.csv [--sigma S]
"""

import argparse
import csv

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from scipy.ndimage import gaussian_filter

Image.MAX_IMAGE_PIXELS = None
WINDOW = 96


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("slide")
    ap.add_argument("heatmap")
    ap.add_argument("tiles")
    ap.add_argument("--sigma", type=float, default=0.0)
    ap.add_argument("--threshold", type=float, default=0.075)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    model = torch.jit.load(args.model).eval()

    slide = np.asarray(Image.open(args.slide).convert("RGB"))
    h, w = slide.shape[:2]
    ph, pw = -(-h // WINDOW) * WINDOW, -(-w // WINDOW) * WINDOW
    padded = np.full((ph, pw, 3), 255, np.uint8)
    padded[:h, :w] = slide

    # Saturation of every 16th pixel, back to full size.
    small = padded[::16, ::16].astype(np.float64)
    mx, mn = small.max(axis=2), small.min(axis=2)
    saturation = np.where(mx > 0, (mx - mn) / np.where(mx > 0, mx, 1), 0.0)
    mask = np.repeat(np.repeat(saturation, 16, axis=0), 16, axis=1)[:ph, :pw]

    heat = np.zeros((ph, pw), np.float64)
    rows = []
    for y in range(0, ph, WINDOW):
        for x in range(0, pw, WINDOW):
            if mask[y:y + WINDOW, x:x + WINDOW].mean() <= args.threshold:
                continue
            patch = torch.from_numpy(padded[y:y + WINDOW, x:x + WINDOW].copy()).permute(2, 0, 1).float() / 255
            patch = (patch - 0.5) / 0.5
            p = torch.sigmoid(model(patch.unsqueeze(0))).item()
            heat[y:y + WINDOW, x:x + WINDOW] = p
            rows.append((x, y, p))
    if args.sigma > 0:
        heat = gaussian_filter(heat, args.sigma)
    coloured = colormaps["plasma"](heat[:h, :w], bytes=True)[:, :, :3]
    Image.fromarray(coloured).save(args.heatmap)
    with open(args.tiles, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["x", "y", "probability"])
        out.writerows(rows)


if __name__ == "__main__":
    main()
