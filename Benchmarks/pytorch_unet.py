"""Side by side: one LDM training step of the same 10.07 M-parameter UNet in PyTorch/diffusers
and here, at the same thread count, printed as a ratio in one run.

The model is diffusers' UNet2DConditionModel(sample_size 8, in/out 4, block_out_channels
(64, 128, 128), layers_per_block 2, down (Down, CrossAttnDown, CrossAttnDown), up (CrossAttnUp,
CrossAttnUp, Up), cross_attention_dim 128, 4 heads of 32 channels at 128 channels), batch 32 of
4x8x8 latents, context (32, 8, 128): forward, eps-MSE, backward, AdamW. Ours is
`Benchmarks unet` (UNetBenchmark.swift: the CompVis layout of the same network).

Run (torch and diffusers are needed only here, never by the product or CI):
    swift build -c release --product Benchmarks
    python Benchmarks/pytorch_unet.py [--threads 1]
"""
import argparse
import re
import resource
import statistics
import subprocess
import time

import torch
from diffusers import UNet2DConditionModel

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--swift", default=".build/release/Benchmarks")
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

unet = UNet2DConditionModel(
    sample_size=8, in_channels=4, out_channels=4, block_out_channels=(64, 128, 128), layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=128, attention_head_dim=4, norm_num_groups=32)  # diffusers: attention_head_dim = heads
params = sum(p.numel() for p in unet.parameters())
opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
x0 = torch.randn(32, 4, 8, 8)
context = torch.randn(32, 8, 128)
alphas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
abar = torch.cumprod(1 - alphas, 0).float()


def step():
    t = torch.randint(0, 1000, (32,))
    noise = torch.randn_like(x0)
    a = abar[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    loss = torch.nn.functional.mse_loss(unet(xt, t, encoder_hidden_states=context).sample, noise)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


step()
times = []
for _ in range(5):
    s = time.perf_counter()
    step()
    times.append(time.perf_counter() - s)
torch_step = statistics.median(times)
torch_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"pytorch unet: {params / 1e6:.2f} M parameters, {torch_step:.3f} s/step (median of 5), peak RSS {torch_rss:.0f} MiB, "
      f"{args.threads} thread(s)")

env = {"LDM_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
import os  # noqa: E402
out = subprocess.run([args.swift, "unet"], capture_output=True, text=True, env={**os.environ, **env}, check=True).stdout
print(out.strip())
m = re.search(r"([0-9.]+) s/step.*peak RSS ([0-9.]+) MiB", out)
if m:
    ours, rss = float(m.group(1)), float(m.group(2))
    print(f"ratio (Swift / PyTorch): step time {ours / torch_step:.2f}, peak RSS {rss / torch_rss:.2f}")
