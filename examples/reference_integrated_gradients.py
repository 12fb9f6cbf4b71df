"""Writes testdata/explanations.json: Captum's Integrated Gradients, computed as TorchServe 0.12's
vision handlers compute them (`IntegratedGradients(model).attribute(input, target=target,
n_steps=15)`, a zero baseline, Gauss-Legendre steps), for patches of the example models, which the
serve tests compare scancer's `/explanations` answers with (within 1e-4).

Needs torch==2.13.0, torchvision==0.28.0, pillow and captum, and runs from the repository root:

    python examples/reference_integrated_gradients.py

Each input is preprocessed as scancer's handler configuration says (torchvision on PIL, which
scancer matches bit for bit): the PCam model with ToTensor and Normalize(0.5, 0.5); the multiclass
test model with Resize(72), CenterCrop(64) and ImageNet's normalisation.
"""

import json
from pathlib import Path

import torch
from captum.attr import IntegratedGradients
from PIL import Image
from torchvision import transforms

ROOT = Path(__file__).resolve().parent.parent

CASES = [
    {
        "model": "examples/pcam-classification.pt",
        "image": "examples/patches/patch-02.png",
        "target": 0,
        "transform": transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
        ),
    },
    {
        "model": "testdata/models/tissue-multiclass.pt",
        "image": "examples/patches/patch-05.png",
        "target": 2,
        "transform": transforms.Compose(
            [
                transforms.Resize(72),
                transforms.CenterCrop(64),
                transforms.ToTensor(),
                transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            ]
        ),
    },
]


def main():
    torch.manual_seed(0)
    out = []
    for case in CASES:
        model = torch.jit.load(str(ROOT / case["model"]))
        model.eval()
        image = Image.open(ROOT / case["image"]).convert("RGB")
        x = case["transform"](image).unsqueeze(0)
        attribution = IntegratedGradients(model).attribute(x, target=case["target"], n_steps=15)
        values = attribution[0].detach().double()
        out.append(
            {
                "model": case["model"],
                "image": case["image"],
                "target": case["target"],
                "shape": list(values.shape),
                "sum": float(values.sum()),
                # float32 values, exactly as torch computed them.
                "values": [float(v) for v in attribution[0].flatten().tolist()],
            }
        )
        print(f"{case['model']} {case['image']} target {case['target']}: sum {float(values.sum()):.6f}")
    text = json.dumps(
        {
            "about": "Captum IntegratedGradients(model).attribute(x, target, n_steps=15), zero baseline "
            "(examples/reference_integrated_gradients.py)",
            "torch": torch.__version__,
            "cases": out,
        }
    )
    (ROOT / "testdata" / "explanations.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
