#!/usr/bin/env python3
"""Python baselines for BENCHMARKS.md (needs torch 2.13 + torchvision + Pillow).

    python_baseline.py handler MODEL DIR   # what a TorchServe handler does, one image at a time
    python_baseline.py batched MODEL DIR B # a batched DataLoader loop at batch size B
    python_baseline.py forward MODEL N B   # PyTorch's default forward on pre-made tensors (images/s)

Both print one line per image (path, label) to stdout, like scancer's output, so all competitors do
the same work end to end; the driver times the whole process, Python's start-up included.
"""

import sys
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms

TF = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])


class Patches(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return TF(Image.open(self.paths[i]).convert("RGB"))


def forward_only(model_path, n, batch):
    import json
    import time

    model = torch.jit.load(model_path).eval()
    x = torch.rand(batch, 3, 96, 96) * 2 - 1
    passes = -(-n // batch)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        start = time.perf_counter()
        for _ in range(passes):
            model(x).tolist()
        seconds = time.perf_counter() - start
    print(json.dumps({"images_per_s": passes * batch / seconds}))


def main():
    if sys.argv[1] == "forward":
        return forward_only(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    mode, model_path, folder = sys.argv[1:4]
    paths = sorted(str(p) for p in Path(folder).rglob("*.png"))
    model = torch.jit.load(model_path).eval()
    out = []
    with torch.inference_mode():
        if mode == "handler":
            for p in paths:
                x = TF(Image.open(p).convert("RGB")).unsqueeze(0)
                out.append(f"{p}\t{int(torch.sigmoid(model(x)).item() > 0.5)}")
        else:
            batch = int(sys.argv[4])
            loader = torch.utils.data.DataLoader(Patches(paths), batch_size=batch, num_workers=1)
            i = 0
            for x in loader:
                for p in torch.sigmoid(model(x)).flatten().tolist():
                    out.append(f"{paths[i]}\t{int(p > 0.5)}")
                    i += 1
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
