"""PyTorch side-by-side for `swift run -c release Benchmarks conv`: the same 3x3, 128->128,
32x32, batch-16 layer (padding 1, with bias), forward, backward and both, on 2 threads.

Run: /work/venv/bin/python Benchmarks/pytorch_conv.py
"""
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(2)
n, c, hw, k = 16, 128, 32, 3
x = torch.randn(n, c, hw, hw, requires_grad=True)
w = (0.03 * torch.randn(c, c, k, k)).requires_grad_()
b = torch.randn(c, requires_grad=True)
gy = torch.randn(n, c, hw, hw)
pass_flops = 2 * n * c * c * k * k * hw * hw


def best(fn, repeats=10):
    fn()
    t = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def forward():
    with torch.no_grad():
        F.conv2d(x, w, b, padding=1)


y = F.conv2d(x, w, b, padding=1)


def backward():
    torch.autograd.grad(y, [x, w, b], gy, retain_graph=True)


def both():
    torch.autograd.grad(F.conv2d(x, w, b, padding=1), [x, w, b], gy)


a = torch.randn(2048, 2048)
gemm = 2 * 2048**3 / best(lambda: a @ a) / 1e9
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.is_available()}")
print(f"torch matmul 2048^3: {gemm:.1f} GFLOPS")
shape = f"{n}x{c}->{c}x{hw}x{hw}"
for label, fn, flops in [("fwd", forward, pass_flops), ("bwd", backward, 2 * pass_flops), ("fwd+bwd", both, 3 * pass_flops)]:
    t = best(fn)
    print(f"torch conv 3x3 {label} ({shape}): {flops / t / 1e9:.1f} GFLOPS, {t * 1e3:.2f} ms")
