"""Side by side: one training step of the same UNet and the same first-stage autoencoder in
PyTorch (diffusers) and here, at the same thread count, with the ratios printed in one run.

- UNet: diffusers UNet2DConditionModel(sample_size 8, in/out 4, block_out_channels (64, 128,
  128), layers_per_block 2, down (Down, CrossAttnDown, CrossAttnDown), up (CrossAttnUp,
  CrossAttnUp, Up), cross_attention_dim 128, heads of 32 channels, norm_num_groups 32),
  batch 32 of 4x8x8 latents, context (32, 8, 128), eps-MSE, one AdamW step (10.07 M params).
- Autoencoder: diffusers AutoencoderKL(in/out 3, block_out_channels (64, 128, 128),
  layers_per_block 2, latent_channels 4), batch 16 of 3x32x32, posterior sample,
  L1 + 1e-6 KL, one AdamW step.

Each model runs in its own process on both sides (peak resident memory is per model); the
time is the median of 5 steps after 2 warm-up steps. Ours is `Benchmarks --json`.

Run (torch and diffusers are needed only here, never by the product or CI):
    swift build -c release --product Benchmarks
    python Benchmarks/pytorch_reference.py [--threads 2]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--swift", default=".build/release/Benchmarks")
parser.add_argument("--model", choices=["unet", "autoencoder"], help="time one model in this process (internal)")
args = parser.parse_args()


def timed(step):
    for _ in range(2):
        step()
    times = []
    for _ in range(5):
        s = time.perf_counter()
        step()
        times.append(time.perf_counter() - s)
    return statistics.median(times)


def unet_step():
    import torch
    from diffusers import UNet2DConditionModel
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(64, 128, 128), layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=128, attention_head_dim=4, norm_num_groups=32)  # diffusers: attention_head_dim = heads
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    x0 = torch.randn(32, 4, 8, 8)
    context = torch.randn(32, 8, 128)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0).float()

    def step():
        t = torch.randint(0, 1000, (32,))
        noise = torch.randn_like(x0)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = torch.nn.functional.mse_loss(unet(xt, t, encoder_hidden_states=context).sample, noise)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, sum(p.numel() for p in unet.parameters())


def autoencoder_step():
    import torch
    from diffusers import AutoencoderKL
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
                        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(64, 128, 128),
                        layers_per_block=2, latent_channels=4, norm_num_groups=32)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    x = (torch.randn(16, 3, 32, 32) * 0.5).clamp(-1, 1)

    def step():
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        loss = (x - reconstruction).abs().mean() + 1e-6 * posterior.kl().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step, sum(p.numel() for p in vae.parameters())


if args.model:
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    step, params = (unet_step if args.model == "unet" else autoencoder_step)()
    seconds = timed(step)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"sec_per_step": seconds, "peak_rss_mib": rss, "parameters": params}))
    sys.exit(0)

import torch  # noqa: E402
torch_version = torch.__version__
ours_env = {**os.environ, "LDM_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
theirs = {}
for model in ["unet", "autoencoder"]:
    out = subprocess.run([sys.executable, __file__, "--model", model, "--threads", str(args.threads)],
                         capture_output=True, text=True, check=True).stdout
    theirs[model] = json.loads(out.strip().splitlines()[-1])
out = subprocess.run([args.swift, "--json"], capture_output=True, text=True, env=ours_env, check=True).stdout
print(out.strip())
ours = json.loads(out.strip().splitlines()[-1])
print(f"pytorch {torch_version}, {args.threads} thread(s)")
for model in ["unet", "autoencoder"]:
    t, o = theirs[model], ours[model]
    print(f"{model}: PyTorch {t['sec_per_step']:.3f} s/step, {t['peak_rss_mib']:.0f} MiB ({t['parameters'] / 1e6:.2f} M params); "
          f"Swift {o['sec_per_step']:.3f} s/step, {o['peak_rss_mib']:.0f} MiB; "
          f"ratio (Swift / PyTorch): step time {o['sec_per_step'] / t['sec_per_step']:.2f}, "
          f"peak RSS {o['peak_rss_mib'] / t['peak_rss_mib']:.2f}")
