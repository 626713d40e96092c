"""Reference values from PyTorch for the Tensor module's neural-network ops.

Writes Tests/TensorTests/Fixtures/nnops_reference.json (small; committed). Run with
    python3 Tests/Fixtures/generate_nnops.py
Each case stores its inputs, so the Swift test recomputes from the same numbers; gradients
are of sum(output * projection) for a stored projection.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)


def flat(t):
    # Nine significant digits round-trip any float32 and keep the file small.
    return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]


def tensor_entry(t):
    return {"shape": list(t.shape), "values": flat(t)}


def with_grads(fn, inputs):
    """Output plus gradients of sum(out * projection) for each input."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    projection = torch.randn(out.shape)
    (out * projection).sum().backward()
    return out, projection, [leaf.grad for leaf in leaves]


cases = {}

# GroupNorm, eps 1e-6 as in the autoencoder, with a non-zero mean to exercise accuracy.
x = torch.randn(2, 6, 3, 4) * 2 + 0.5
w = torch.randn(6)
b = torch.randn(6)
out, proj, grads = with_grads(lambda x, w, b: F.group_norm(x, 3, w, b, eps=1e-6), [x, w, b])
cases["groupNorm"] = {
    "groups": 3, "eps": 1e-6, "x": tensor_entry(x), "weight": tensor_entry(w), "bias": tensor_entry(b),
    "out": tensor_entry(out), "projection": tensor_entry(proj),
    "gradX": tensor_entry(grads[0]), "gradWeight": tensor_entry(grads[1]), "gradBias": tensor_entry(grads[2]),
}
out, proj, grads = with_grads(lambda x, w, b: F.silu(F.group_norm(x, 3, w, b, eps=1e-6)), [x, w, b])
cases["groupNormSiLU"] = {
    "groups": 3, "eps": 1e-6, "x": tensor_entry(x), "weight": tensor_entry(w), "bias": tensor_entry(b),
    "out": tensor_entry(out), "projection": tensor_entry(proj),
    "gradX": tensor_entry(grads[0]), "gradWeight": tensor_entry(grads[1]), "gradBias": tensor_entry(grads[2]),
}

# LayerNorm over the last dimension.
x = torch.randn(3, 4, 10)
w = torch.randn(10)
b = torch.randn(10)
out, proj, grads = with_grads(lambda x, w, b: F.layer_norm(x, (10,), w, b, eps=1e-5), [x, w, b])
cases["layerNorm"] = {
    "eps": 1e-5, "x": tensor_entry(x), "weight": tensor_entry(w), "bias": tensor_entry(b),
    "out": tensor_entry(out), "projection": tensor_entry(proj),
    "gradX": tensor_entry(grads[0]), "gradWeight": tensor_entry(grads[1]), "gradBias": tensor_entry(grads[2]),
}

# BatchNorm in training mode, with the running-statistics update.
x = torch.randn(4, 3, 5) * 1.5 + 0.3
w = torch.randn(3)
b = torch.randn(3)
running_mean = torch.randn(3)
running_var = torch.rand(3) + 0.5
rm, rv = running_mean.clone(), running_var.clone()
out = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
cases["batchNorm"] = {
    "x": tensor_entry(x), "weight": tensor_entry(w), "bias": tensor_entry(b),
    "runningMean": tensor_entry(running_mean), "runningVar": tensor_entry(running_var),
    "out": tensor_entry(out), "updatedMean": tensor_entry(rm), "updatedVar": tensor_entry(rv),
    "evalOut": tensor_entry(F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5)),
}

# Pointwise activations over a spread that includes the saturating ranges.
x = torch.cat([torch.linspace(-30, 30, 61), torch.randn(40) * 3, torch.tensor([0.0, 19.9, 20.0, 20.1, -90.0, 90.0])])
cases["activations"] = {
    "x": tensor_entry(x),
    "gelu": tensor_entry(F.gelu(x)),
    "geluTanh": tensor_entry(F.gelu(x, approximate="tanh")),
    "softplus": tensor_entry(F.softplus(x)),
    "silu": tensor_entry(F.silu(x)),
    "sigmoid": tensor_entry(torch.sigmoid(x)),
}
x = torch.randn(2, 3, 8)
h, gate = x.chunk(2, dim=-1)
cases["geglu"] = {"x": tensor_entry(x), "out": tensor_entry(h * F.gelu(gate))}

x = torch.randn(3, 7) * 5
cases["softmax"] = {"x": tensor_entry(x), "softmax": tensor_entry(F.softmax(x, dim=-1)),
                    "logSoftmax": tensor_entry(F.log_softmax(x, dim=-1))}

# Cross-attention with two heads, Lk != Lq, Dv != D, and a key padding mask.
B, Lq, Lk, D, Dv, H = 2, 3, 5, 8, 6, 2
q = torch.randn(B, Lq, D)
k = torch.randn(B, Lk, D)
v = torch.randn(B, Lk, Dv)
mask = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])


def attention(q, k, v):
    def split(t):
        return t.reshape(t.shape[0], t.shape[1], H, -1).transpose(1, 2)
    keep = (~mask)[:, None, None, :]  # SDPA's boolean mask means "take part"
    o = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=keep)
    return o.transpose(1, 2).reshape(B, Lq, Dv)


out, proj, grads = with_grads(attention, [q, k, v])
cases["attention"] = {
    "heads": H, "q": tensor_entry(q), "k": tensor_entry(k), "v": tensor_entry(v),
    "mask": mask.tolist(), "out": tensor_entry(out), "projection": tensor_entry(proj),
    "gradQ": tensor_entry(grads[0]), "gradK": tensor_entry(grads[1]), "gradV": tensor_entry(grads[2]),
}

path = pathlib.Path(__file__).resolve().parent.parent / "TensorTests" / "Fixtures" / "nnops_reference.json"
path.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, separators=(",", ":")))
print(f"wrote {path} ({path.stat().st_size} bytes)")
