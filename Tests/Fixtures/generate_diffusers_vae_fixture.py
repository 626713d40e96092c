#!/usr/bin/env python3
"""A tiny diffusers AutoencoderKL with random weights and its outputs, for `ldm import-vae`.

Writes to Tests/ModelsTests/Fixtures/:
  diffusers_vae/diffusion_pytorch_model.safetensors  the model as diffusers saves it (float16
                                                      weights, to stay small) plus config.json
  diffusers_vae_io.safetensors                        an input, the posterior mean/logvar and the
                                                      decoded posterior mode, run by diffusers
                                                      itself in float64 on those exact weights
  diffusers_vae_shortcut_keys.json                    key → shape of a 2-level model whose
                                                      levels differ in width (conv_shortcut),
                                                      too big to commit with weights

usage: python3 Tests/Fixtures/generate_diffusers_vae_fixture.py
       python3 Tests/Fixtures/generate_diffusers_vae_fixture.py --check-export DIR
The second form loads a directory written by `ldm export-vae` with diffusers and runs it on the
fixture's input; for an export of the imported fixture (`ldm import-vae` then `ldm export-vae`)
the outputs must equal the fixture's expected ones.
Never run by CI.
"""
import json
import os
import sys

import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "ModelsTests", "Fixtures")


def tiny(block_out_channels):
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
                         up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
                         block_out_channels=block_out_channels, layers_per_block=1, latent_channels=4,
                         norm_num_groups=32, sample_size=8, scaling_factor=0.5)


def run(model, x):
    with torch.no_grad():
        posterior = model.encode(x).latent_dist
        decoded = model.decode(posterior.mode()).sample
    return posterior.mean, posterior.logvar, decoded


def make_fixture():
    torch.manual_seed(4321)
    model = tiny((32, 32))
    with torch.no_grad():
        for name, p in model.named_parameters():
            # Random norm affines and biases too, so a swapped weight/bias cannot hide.
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            p.copy_(p.half().float())  # the values float16 storage keeps
    directory = os.path.join(OUT, "diffusers_vae")
    model.save_pretrained(directory, safe_serialization=True)
    # Re-save as float16 (diffusers writes float32); loading converts back exactly.
    weights = os.path.join(directory, "diffusion_pytorch_model.safetensors")
    save_file({k: v.half() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})

    reloaded = AutoencoderKL.from_pretrained(directory).double()
    x = (torch.rand(2, 3, 8, 8) * 2 - 1).float()
    mean, logvar, decoded = run(reloaded, x.double())
    save_file({"input": x, "posterior_mean": mean.float().contiguous(), "posterior_logvar": logvar.float().contiguous(),
               "decoded": decoded.float().contiguous()},
              os.path.join(OUT, "diffusers_vae_io.safetensors"))
    shapes = {k: list(v.shape) for k, v in tiny((32, 64)).state_dict().items()}
    with open(os.path.join(OUT, "diffusers_vae_shortcut_keys.json"), "w") as f:
        json.dump(shapes, f, indent=0, sort_keys=True)
    print("fixture: mean", mean.abs().mean().item(), "decoded", decoded.abs().mean().item())


def check_export(directory):
    """Loads an `ldm export-vae` directory with diffusers and compares it with the fixture's outputs."""
    model = AutoencoderKL.from_pretrained(directory).double()
    print("diffusers loaded", directory, "with config", dict(model.config))
    t = load_file(os.path.join(OUT, "diffusers_vae_io.safetensors"))
    mean, logvar, decoded = run(model, t["input"].double())
    for name, value in [("posterior_mean", mean), ("posterior_logvar", logvar), ("decoded", decoded)]:
        err = (value.float() - t[name]).abs().max().item()
        print(f"{name}: max |exported − fixture| = {err:.3g}")
        assert err < 1e-6, name


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2])
    else:
        make_fixture()
