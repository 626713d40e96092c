"""A tiny torch module (Conv2d + nested Conv2d + Linear) for Tests/NNTests/TorchModuleTests.swift.

Run: python3 Tests/Fixtures/generate_tiny_module_fixture.py
Writes Tests/NNTests/Fixtures/tiny_module.json: the torch state_dict (by name), an input, the
output, and the gradients of sum(output * R) for every parameter, as exact float.hex() strings.
The Swift module loads the weights by name and must reproduce output and gradients.
"""
import json
import os

import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(2, 4, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = nn.Conv2d(4, 3, 3, stride=2, padding=1)
        self.proj_out = nn.Linear(3, 5)

    def forward(self, x):
        h = self.mid.block_1(self.conv_in(x))
        return self.proj_out(h.permute(0, 2, 3, 1))


def hexes(t):
    return [float(v).hex() for v in t.detach().flatten().tolist()]


def main():
    torch.manual_seed(0)
    model = Tiny()
    x = torch.randn(2, 2, 5, 5)
    y = model(x)
    r = torch.randn(y.shape)
    (y * r).sum().backward()
    out = {
        "state_dict": {k: {"shape": list(v.shape), "values": hexes(v)} for k, v in model.state_dict().items()},
        "input": {"shape": list(x.shape), "values": hexes(x)},
        "output": {"shape": list(y.shape), "values": hexes(y)},
        "projection": {"shape": list(r.shape), "values": hexes(r)},
        "grads": {k: {"shape": list(p.shape), "values": hexes(p.grad)} for k, p in model.named_parameters()},
    }
    path = os.path.join(os.path.dirname(__file__), "..", "NNTests", "Fixtures", "tiny_module.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
