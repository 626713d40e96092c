"""PyTorch side-by-side for `swift run -c release Benchmarks conv`: the same layers (padding
k // 2, with bias), forward, backward and both, on 2 threads.

Run: python Benchmarks/pytorch_conv.py   (torch CPU build)
"""
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(2)

# (batch, in channels, out channels, size, kernel), as in ConvBenchmark.swift.
LAYERS = [
    (16, 128, 128, 32, 3),  # headline
    (16, 256, 128, 32, 1),
    (16, 256, 256, 8, 3),
    (16, 512, 512, 4, 3),  # LPIPS conv4 on 32x32 images
    (16, 512, 512, 2, 3),  # LPIPS conv5 on 32x32 images
    (1, 128, 128, 64, 3),
]


def best(fn, repeats=10):
    fn()
    t = float("inf")
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def run(n, cin, cout, hw, k):
    x = torch.randn(n, cin, hw, hw, requires_grad=True)
    w = (0.03 * torch.randn(cout, cin, k, k)).requires_grad_()
    b = torch.randn(cout, requires_grad=True)
    gy = torch.randn(n, cout, hw, hw)
    pad = k // 2
    pass_flops = 2 * n * cout * cin * k * k * hw * hw
    y = F.conv2d(x, w, b, padding=pad)

    def forward():
        with torch.no_grad():
            F.conv2d(x, w, b, padding=pad)

    def backward():
        torch.autograd.grad(y, [x, w, b], gy, retain_graph=True)

    def both():
        torch.autograd.grad(F.conv2d(x, w, b, padding=pad), [x, w, b], gy)

    shape = f"{n}x{cin}->{cout}x{hw}x{hw}"
    for label, fn, flops in [("fwd", forward, pass_flops), ("bwd", backward, 2 * pass_flops),
                             ("fwd+bwd", both, 3 * pass_flops)]:
        t = best(fn)
        print(f"torch conv {k}x{k} {label} ({shape}): {flops / t / 1e9:.1f} GFLOPS, {t * 1e3:.2f} ms")


a = torch.randn(2048, 2048)
gemm = 2 * 2048**3 / best(lambda: a @ a) / 1e9
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, mkldnn {torch.backends.mkldnn.is_available()}")
print(f"torch matmul 2048^3: {gemm:.1f} GFLOPS")
for layer in LAYERS:
    run(*layer)
