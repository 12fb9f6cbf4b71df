#!/usr/bin/env python3
"""Scancer's full-width pcam-classification network (ModelCNN, c = 16: 2.6 M parameters, as
examples/export_test_models.py --bench traces it with PyTorch) written directly as ONNX, with seeded
weights, for machines without PyTorch: four 3x3 convolutions (16, 32, 64, 128 channels) each with
ReLU and 2x2 max-pooling, then 4608 -> 512 -> 256 -> 128 -> 1 fully connected layers with ReLU
(batch normalisation at inference is an affine map, folded into the layers before it; dropout is
the identity). The batch dimension is dynamic.

    python bench/full_width_onnx.py OUT_DIR     # OUT_DIR/pcam-classification.onnx and its .toml
(needs the `onnx` and `numpy` packages)"""

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    nodes, weights = [], []

    def tensor(name, shape, fan_in):
        # PyTorch's default initialisation bound, 1/sqrt(fan_in).
        bound = 1.0 / np.sqrt(fan_in)
        weights.append(numpy_helper.from_array(rng.uniform(-bound, bound, shape).astype(np.float32), name))
        return name

    x, c = "input", 16
    for k, (cin, cout) in enumerate([(3, c), (c, 2 * c), (2 * c, 4 * c), (4 * c, 8 * c)]):
        w = tensor(f"conv{k}.weight", (cout, cin, 3, 3), cin * 9)
        b = tensor(f"conv{k}.bias", (cout,), cin * 9)
        nodes += [
            helper.make_node("Conv", [x, w, b], [f"conv{k}"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
            helper.make_node("Relu", [f"conv{k}"], [f"relu{k}"]),
            helper.make_node("MaxPool", [f"relu{k}"], [f"pool{k}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        x = f"pool{k}"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    x = "flat"
    sizes = [288 * c, 32 * c, 16 * c, 8 * c, 1]
    for k, (fin, fout) in enumerate(zip(sizes, sizes[1:])):
        w = tensor(f"fc{k}.weight", (fout, fin), fin)
        b = tensor(f"fc{k}.bias", (fout,), fin)
        last = k == len(sizes) - 2
        y = "output" if last else f"fc{k}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [y], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"fc_relu{k}"]))
            x = f"fc_relu{k}"
    graph = helper.make_graph(
        nodes, "ModelCNN",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 96, 96])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 1])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out / "pcam-classification.onnx")
    shutil.copy(ROOT / "examples" / "pcam-classification.toml", out / "pcam-classification.toml")
    params = sum(int(np.prod(w.dims)) for w in weights)
    print(f"{out / 'pcam-classification.onnx'}: {params} parameters")


if __name__ == "__main__":
    main()
