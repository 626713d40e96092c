#!/usr/bin/env python3
"""Reference LPIPS (VGG16, v0.1) in float64 with PyTorch, from the converted safetensors file.

Used to record the LPIPS fixtures the Swift tests compare against; never run by CI.
usage: lpips_reference.py Checkpoints/pretrained/lpips_vgg16.safetensors
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

SHIFT = torch.tensor([-.030, -.088, -.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([.458, .448, .450], dtype=torch.float64).view(1, 3, 1, 1)
# (slice, torchvision index) of each conv, and after which conv each LPIPS tap is taken.
CONVS = [(1, 0), (1, 2), (2, 5), (2, 7), (3, 10), (3, 12), (3, 14), (4, 17), (4, 19), (4, 21), (5, 24), (5, 26), (5, 28)]
POOL_BEFORE = {5, 10, 17, 24}
TAP_AFTER = {2, 7, 14, 21, 28}


def features(w, x):
    h = (x - SHIFT) / SCALE
    taps = []
    for s, i in CONVS:
        if i in POOL_BEFORE:
            h = F.max_pool2d(h, 2, 2)
        h = F.relu(F.conv2d(h, w[f"net.slice{s}.{i}.weight"], w[f"net.slice{s}.{i}.bias"], padding=1))
        if i in TAP_AFTER:
            taps.append(h)
    return taps


def lpips(w, x, y):
    total = 0
    for k, (a, b) in enumerate(zip(features(w, x), features(w, y))):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        d = F.conv2d((a - b) ** 2, w[f"lin{k}.model.1.weight"])
        total = total + d.mean(dim=(2, 3), keepdim=True)
    return total.view(-1)


def images():
    h = torch.arange(32, dtype=torch.float64).view(32, 1).expand(32, 32)
    w = torch.arange(32, dtype=torch.float64).view(1, 32).expand(32, 32)
    hramp = (-1 + 2 * w / 31).expand(3, 32, 32)
    vramp = (-1 + 2 * h / 31).expand(3, 32, 32)
    zeros = torch.zeros(3, 32, 32, dtype=torch.float64)
    half = torch.full((3, 32, 32), 0.5, dtype=torch.float64)
    checker = ((((h // 4) + (w // 4)) % 2) * 2 - 1).expand(3, 32, 32)
    return [("hramp_vs_vramp", hramp, vramp), ("zeros_vs_half", zeros, half),
            ("zeros_vs_checker", zeros, checker), ("hramp_vs_hramp", hramp, hramp)]


if __name__ == "__main__":
    w = {k: v.double() for k, v in load_file(sys.argv[1]).items()}
    for name, x, y in images():
        print(f"{name}: {lpips(w, x[None], y[None]).item():.8f}")
