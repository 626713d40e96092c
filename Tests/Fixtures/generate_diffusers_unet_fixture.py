#!/usr/bin/env python3
"""Two tiny diffusers UNet2DConditionModels with random weights and their outputs, for `ldm import-unet`.

Writes to Tests/ModelsTests/Fixtures/:
  diffusers_unet/{config.json, diffusion_pytorch_model.safetensors}
      block_out_channels (32, 64), layers_per_block 1, DownBlock2D + CrossAttnDownBlock2D /
      CrossAttnUpBlock2D + UpBlock2D, cross_attention_dim 24, attention_head_dim 4 (diffusers' name
      for the number of heads: 4 heads of 16 channels at 64 channels)
  diffusers_unet_class/{config.json, diffusion_pytorch_model.safetensors}
      attention at level 0 (and the mid block) with attention_head_dim (2, 4): heads of 16 channels at
      32 (level 0) and 64 (mid block, which takes the last level's count),
      num_class_embeds 5, resnet_time_scale_shift "scale_shift", transformer_layers_per_block 2
  diffusers_unet_io.safetensors
      <name>.x (2,4,8,8), <name>.timesteps (2,), <name>.context (2,3,24), [class.class_labels (2,)],
      <name>.output: the model's output, for name in unet, class
Weights are saved as diffusers saves them (float32). Every parameter, zero-initialised convs included, is
random (weights N/sqrt(fan_in), biases 0.1·N, norm weights 1 + 0.1·N, embeddings N), rounded to float32
before the model runs in float64.

Precision: diffusers' get_timestep_embedding builds the sinusoid arguments in float32 even in a float64
model; for the fixture the model's time_proj is replaced by the same formula in float64 (as ldm computes
it). The script prints how much the unpatched float64 and float32 runs differ from the fixture.

usage: python3 Tests/Fixtures/generate_diffusers_unet_fixture.py
       python3 Tests/Fixtures/generate_diffusers_unet_fixture.py --check-export DIR IO [PREFIX]
The second form loads a directory written by `ldm export-unet` with diffusers (unpatched) and runs it on
the inputs of IO (keys [PREFIX.]x, timesteps, context?, class_labels?), printing the max difference from
IO's output (our forward). Never run by CI.
"""
import math
import os
import sys

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "ModelsTests", "Fixtures")


def tiny(**changes):
    kwargs = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=24,
                  attention_head_dim=4, norm_num_groups=32)
    kwargs.update(changes)
    return UNet2DConditionModel(**kwargs)


def randomise(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and p.dim() == 1:
                p.copy_((1 + 0.1 * torch.randn_like(p)) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "class_embedding" in name:
                p.copy_(torch.randn_like(p))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn_like(p) / math.sqrt(fan_in))
            p.copy_(p.float())


def float64_time_proj(model):
    """model.time_proj in float64: [cos | sin] of t·exp(−ln(10⁴)·i/half) (flip_sin_to_cos, freq_shift 0)."""
    dim = model.config.block_out_channels[0]

    def forward(timesteps):
        half = dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
        args = timesteps.to(torch.float64)[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    model.time_proj.forward = forward


def run(model, dtype, x, timesteps, context, class_labels):
    model = model.to(dtype)
    with torch.no_grad():
        return model(x.to(dtype), timesteps.to(dtype), encoder_hidden_states=None if context is None else context.to(dtype),
                     class_labels=class_labels).sample


def make_fixture():
    torch.manual_seed(2718)
    io = {}
    for name, changes in [("unet", {}),
                          ("class", dict(down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                         up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=(2, 4),
                                         num_class_embeds=5, resnet_time_scale_shift="scale_shift",
                                         transformer_layers_per_block=2))]:
        model = tiny(**changes)
        randomise(model)
        directory = os.path.join(OUT, "diffusers_unet" if name == "unet" else "diffusers_unet_" + name)
        model.save_pretrained(directory, safe_serialization=True)
        x = torch.randn(2, 4, 8, 8)
        timesteps = torch.tensor([3.0, 917.0])
        context = torch.randn(2, 3, 24)
        labels = torch.tensor([1, 4]) if "num_class_embeds" in changes else None
        reloaded = UNet2DConditionModel.from_pretrained(directory)
        plain64 = run(reloaded, torch.float64, x, timesteps, context, labels)
        plain32 = run(reloaded, torch.float32, x, timesteps, context, labels).double()
        float64_time_proj(reloaded)
        out = run(reloaded, torch.float64, x, timesteps, context, labels)
        io.update({f"{name}.x": x, f"{name}.timesteps": timesteps, f"{name}.context": context,
                   f"{name}.output": out.float().contiguous()})
        if labels is not None:
            io[f"{name}.class_labels"] = labels.float()
        size = os.path.getsize(os.path.join(directory, "diffusion_pytorch_model.safetensors"))
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, {size / 1e6:.2f} MB; output mean |.| "
              f"{out.abs().mean().item():.4f}; unpatched float64 differs by {(plain64 - out).abs().max().item():.2e}, "
              f"float32 by {(plain32 - out).abs().max().item():.2e}")
    save_file(io, os.path.join(OUT, "diffusers_unet_io.safetensors"))


def check_export(directory, io_path, prefix=""):
    """Loads an `ldm export-unet` directory with diffusers and compares its output with ours."""
    model = UNet2DConditionModel.from_pretrained(directory)
    print("diffusers loaded", directory, "with", sum(p.numel() for p in model.parameters()), "parameters")
    t = load_file(io_path)
    p = prefix + "." if prefix else ""
    context = t.get(p + "context")
    labels = t[p + "class_labels"].long() if p + "class_labels" in t else None
    ours = t[p + "output"].double()
    for dtype in (torch.float64, torch.float32):
        out = run(model, dtype, t[p + "x"], t[p + "timesteps"], context, labels).double()
        err = (out - ours).abs().max().item()
        print(f"{dtype}: max |diffusers − ours| = {err:.3g} (output max |.| {ours.abs().max().item():.3g})")


if __name__ == "__main__":
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--check-export":
        check_export(*sys.argv[2:])
    else:
        make_fixture()
