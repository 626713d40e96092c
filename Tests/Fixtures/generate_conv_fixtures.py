"""Writes Tests/TensorTests/Fixtures/conv_pool.json: PyTorch's conv2d (outputs and all three
gradients), max/avg pooling and nearest upsampling on small random inputs, so the Swift
kernels are checked against PyTorch's semantics, not only against our own reference loops.

Run: python3 Tests/Fixtures/generate_conv_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
out_path = pathlib.Path(__file__).resolve().parent.parent / "TensorTests" / "Fixtures" / "conv_pool.json"


def flat(t):
    return [round(float(v), 7) for v in t.detach().reshape(-1).tolist()]


def conv_case(name, x_shape, w_shape, stride, pad, bias=True):
    """pad = (top, bottom, left, right); applied with F.pad so asymmetric padding is covered."""
    x = torch.randn(*x_shape, dtype=torch.float64, requires_grad=True)
    w = (0.5 * torch.randn(*w_shape, dtype=torch.float64)).requires_grad_()
    b = torch.randn(w_shape[0], dtype=torch.float64, requires_grad=True) if bias else None
    top, bottom, left, right = pad
    y = F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=stride)
    gy = torch.randn_like(y)
    y.backward(gy)
    case = {"name": name, "stride": stride, "padding": list(pad),
            "x_shape": list(x.shape), "x": flat(x), "w_shape": list(w.shape), "w": flat(w),
            "y_shape": list(y.shape), "y": flat(y), "gy": flat(gy),
            "gx": flat(x.grad), "gw": flat(w.grad)}
    if bias:
        case["b"] = flat(b)
        case["gb"] = flat(b.grad)
    return case


def pool_case(x_shape, kernel, stride, padding):
    x = torch.randn(*x_shape, dtype=torch.float64)
    return {"x_shape": list(x_shape), "x": flat(x), "kernel": kernel, "stride": stride, "padding": padding,
            "max": flat(F.max_pool2d(x, kernel, stride, padding)),
            "avg": flat(F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True)),
            "out_shape": list(F.avg_pool2d(x, kernel, stride, padding).shape)}


x_up = torch.randn(1, 2, 3, 4, dtype=torch.float64)
fixture = {
    "torch_version": torch.__version__,
    "conv": [
        conv_case("3x3 stride 1 pad 1", (2, 3, 7, 6), (4, 3, 3, 3), 1, (1, 1, 1, 1)),
        conv_case("3x3 stride 2 downsample pad", (2, 3, 8, 7), (5, 3, 3, 3), 2, (0, 1, 0, 1)),
        conv_case("1x1", (2, 4, 5, 3), (3, 4, 1, 1), 1, (0, 0, 0, 0)),
        conv_case("2x3 stride 2 no bias", (1, 2, 6, 9), (3, 2, 2, 3), 2, (1, 0, 2, 1), bias=False),
    ],
    "pool": [pool_case((2, 2, 7, 6), 3, 2, 1), pool_case((1, 3, 8, 8), 2, 2, 0)],
    "upsample": {"x_shape": list(x_up.shape), "x": flat(x_up),
                 "y": flat(F.interpolate(x_up, scale_factor=2, mode="nearest"))},
}
out_path.parent.mkdir(parents=True, exist_ok=True)
out_path.write_text(json.dumps(fixture))
print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")
