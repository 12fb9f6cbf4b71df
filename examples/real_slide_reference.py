#!/usr/bin/env python3
"""PyTorch's probabilities for windows of the real test slides, read by openslide-python.

Developer script (PyTorch 2.13, openslide-python 1.4.7 with openslide-bin 4.0.1.2, Pillow, numpy, in a
venv); the tests never run it, they read what it writes into testdata/real-slides.json. The slides are
the ones `cargo xtask setup` fetches (pinned by sha256) and links in .tools/.

    python examples/real_slide_reference.py

For each slide, every 96 x 96 window of a 96-pixel grid at level 0 (the pcam model declares no
resolution, so scancer analyses level 0 as it is) whose pixels are all inside the slide is read with
`OpenSlide.read_region`, normalised as examples/pcam-classification.toml says ((x / 255 - 0.5) / 0.5),
and run through examples/pcam-classification.pt in plain PyTorch (no freezing, no oneDNN fusion); the
probability of metastasis is the sigmoid of its logit. A spread of windows (every STEP-th) is kept.
"""

import json
import pathlib

import numpy as np
import openslide
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
SLIDES = ["cmu-small-region.svs", "tcga-cr-7395-01a-01-ts1.svs"]
SIZE = 96
STEP = 37


def windows(slide):
    width, height = slide.level_dimensions[0]
    grid = [(x, y) for y in range(0, height - SIZE + 1, SIZE) for x in range(0, width - SIZE + 1, SIZE)]
    return grid[::STEP]


def main():
    torch.set_num_threads(1)
    model = torch.jit.load(str(ROOT / "examples" / "pcam-classification.pt")).eval()
    out = {"model": "examples/pcam-classification.pt", "window": SIZE, "slides": {}}
    for name in SLIDES:
        slide = openslide.OpenSlide(str(ROOT / ".tools" / name))
        rows = []
        for x, y in windows(slide):
            region = np.asarray(slide.read_region((x, y), 0, (SIZE, SIZE)))
            assert (region[..., 3] == 255).all(), f"{name} ({x}, {y}) is not opaque"
            rgb = torch.from_numpy(region[..., :3].copy()).permute(2, 0, 1).float() / 255.0
            batch = ((rgb - 0.5) / 0.5).unsqueeze(0)
            with torch.no_grad():
                logit = model(batch).reshape(-1)[0].item()
            rows.append({"x": x, "y": y, "probability": 1.0 / (1.0 + np.exp(-logit))})
        out["slides"][name] = rows
        print(f"{name}: {len(rows)} windows")
    (ROOT / "testdata" / "real-slides.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
