#!/usr/bin/env python3
"""Reference outputs of the LDM first stage (AutoencoderKL) and its loss, computed in float64.

The blocks are our own functional port of ldm/modules/diffusionmodules/model.py (Encoder,
Decoder, ResnetBlock, AttnBlock, Downsample, Upsample), DiagonalGaussianDistribution and
ldm/modules/losses/contperceptual.py (LPIPSWithDiscriminator with taming's NLayerDiscriminator
and hinge loss). Weights are random, stored as float16 under ldm's key names to keep the
fixture small; every expected value is computed from exactly those rounded weights.

Writes Tests/ModelsTests/Fixtures/first_stage.safetensors and first_stage_loss.safetensors.
usage: python3 Tests/Fixtures/generate_first_stage_fixture.py \
           Checkpoints/pretrained/lpips_vgg16.safetensors
Never run by CI.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
import lpips_reference  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "ModelsTests", "Fixtures")
# The tiny KL autoencoder: 2 levels (f = 2), attention at the 4×4 level and in the mid block.
CONFIG = dict(ch=32, ch_mult=[1, 1], num_res_blocks=1, attn_resolutions=[4], resolution=8,
              in_channels=3, out_ch=3, z_channels=4, embed_dim=3)

gen = torch.Generator().manual_seed(1234)


def rounded(t):
    """float16-representable values, held in float64."""
    return t.to(torch.float16).to(torch.float64)


class Weights(dict):
    """Creates ldm-named random weights on first use (fan-in scaled so activations stay O(1))."""

    def conv(self, name, cin, cout, k):
        self[name + ".weight"] = rounded(torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5)
        self[name + ".bias"] = rounded(0.1 * torch.randn(cout, generator=gen))

    def norm(self, name, c):
        self[name + ".weight"] = rounded(1 + 0.1 * torch.randn(c, generator=gen))
        self[name + ".bias"] = rounded(0.1 * torch.randn(c, generator=gen))


def group_norm(w, name, x):
    return F.group_norm(x, 32, w[name + ".weight"], w[name + ".bias"], eps=1e-6)


def swish(x):
    return x * torch.sigmoid(x)


def conv(w, name, x, stride=1, padding=0):
    return F.conv2d(x, w[name + ".weight"], w[name + ".bias"], stride=stride, padding=padding)


def resnet_block(w, name, x):
    h = conv(w, name + ".conv1", swish(group_norm(w, name + ".norm1", x)), padding=1)
    h = conv(w, name + ".conv2", swish(group_norm(w, name + ".norm2", h)), padding=1)
    if name + ".nin_shortcut.weight" in w:
        x = conv(w, name + ".nin_shortcut", x)
    return x + h


def attn_block(w, name, x):
    h = group_norm(w, name + ".norm", x)
    q, k, v = (conv(w, f"{name}.{p}", h) for p in "qkv")
    b, c, hh, ww = q.shape
    q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
    k = k.reshape(b, c, hh * ww)
    attn = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)
    v = v.reshape(b, c, hh * ww)
    h = torch.bmm(v, attn.permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + conv(w, name + ".proj_out", h)


def downsample(w, name, x):
    return conv(w, name + ".conv", F.pad(x, (0, 1, 0, 1)), stride=2)


def upsample(w, name, x):
    return conv(w, name + ".conv", F.interpolate(x, scale_factor=2.0, mode="nearest"), padding=1)


def make_resnet(w, name, cin, cout):
    w.norm(name + ".norm1", cin)
    w.conv(name + ".conv1", cin, cout, 3)
    w.norm(name + ".norm2", cout)
    w.conv(name + ".conv2", cout, cout, 3)
    if cin != cout:
        w.conv(name + ".nin_shortcut", cin, cout, 1)


def make_attn(w, name, c):
    w.norm(name + ".norm", c)
    for p in ["q", "k", "v", "proj_out"]:
        w.conv(f"{name}.{p}", c, c, 1)


def make_autoencoder(cfg):
    w = Weights()
    ch, mult, nrb = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"]
    levels = len(mult)
    # Encoder (ldm Encoder.__init__ order).
    w.conv("encoder.conv_in", cfg["in_channels"], ch, 3)
    res, in_mult = cfg["resolution"], [1] + mult
    for i in range(levels):
        block_in, block_out = ch * in_mult[i], ch * mult[i]
        for j in range(nrb):
            make_resnet(w, f"encoder.down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
            if res in cfg["attn_resolutions"]:
                make_attn(w, f"encoder.down.{i}.attn.{j}", block_in)
        if i != levels - 1:
            w.conv(f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
            res //= 2
    make_resnet(w, "encoder.mid.block_1", block_in, block_in)
    make_attn(w, "encoder.mid.attn_1", block_in)
    make_resnet(w, "encoder.mid.block_2", block_in, block_in)
    w.norm("encoder.norm_out", block_in)
    w.conv("encoder.conv_out", block_in, 2 * cfg["z_channels"], 3)
    # Decoder.
    block_in = ch * mult[-1]
    res = cfg["resolution"] // 2 ** (levels - 1)
    w.conv("decoder.conv_in", cfg["z_channels"], block_in, 3)
    make_resnet(w, "decoder.mid.block_1", block_in, block_in)
    make_attn(w, "decoder.mid.attn_1", block_in)
    make_resnet(w, "decoder.mid.block_2", block_in, block_in)
    for i in reversed(range(levels)):
        block_out = ch * mult[i]
        for j in range(nrb + 1):
            make_resnet(w, f"decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
            if res in cfg["attn_resolutions"]:
                make_attn(w, f"decoder.up.{i}.attn.{j}", block_in)
        if i != 0:
            w.conv(f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
            res *= 2
    w.norm("decoder.norm_out", block_in)
    w.conv("decoder.conv_out", block_in, cfg["out_ch"], 3)
    w.conv("quant_conv", 2 * cfg["z_channels"], 2 * cfg["embed_dim"], 1)
    w.conv("post_quant_conv", cfg["embed_dim"], cfg["z_channels"], 1)
    return w


def encoder(w, cfg, x):
    levels = len(cfg["ch_mult"])
    h = conv(w, "encoder.conv_in", x, padding=1)
    for i in range(levels):
        for j in range(cfg["num_res_blocks"]):
            h = resnet_block(w, f"encoder.down.{i}.block.{j}", h)
            if f"encoder.down.{i}.attn.{j}.q.weight" in w:
                h = attn_block(w, f"encoder.down.{i}.attn.{j}", h)
        if i != levels - 1:
            h = downsample(w, f"encoder.down.{i}.downsample", h)
    h = resnet_block(w, "encoder.mid.block_2", attn_block(w, "encoder.mid.attn_1", resnet_block(w, "encoder.mid.block_1", h)))
    return conv(w, "encoder.conv_out", swish(group_norm(w, "encoder.norm_out", h)), padding=1)


def decoder(w, cfg, z):
    h = conv(w, "decoder.conv_in", z, padding=1)
    h = resnet_block(w, "decoder.mid.block_2", attn_block(w, "decoder.mid.attn_1", resnet_block(w, "decoder.mid.block_1", h)))
    for i in reversed(range(len(cfg["ch_mult"]))):
        for j in range(cfg["num_res_blocks"] + 1):
            h = resnet_block(w, f"decoder.up.{i}.block.{j}", h)
            if f"decoder.up.{i}.attn.{j}.q.weight" in w:
                h = attn_block(w, f"decoder.up.{i}.attn.{j}", h)
        if i != 0:
            h = upsample(w, f"decoder.up.{i}.upsample", h)
    return conv(w, "decoder.conv_out", swish(group_norm(w, "decoder.norm_out", h)), padding=1)


def posterior(moments):
    """DiagonalGaussianDistribution: (mean, clamped logvar)."""
    mean, logvar = torch.chunk(moments, 2, dim=1)
    return mean, torch.clamp(logvar, -30.0, 20.0)


def f32(t):
    return t.to(torch.float32).contiguous()


def first_stage_fixture():
    w = make_autoencoder(CONFIG)
    x = rounded(torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1)
    mean, logvar = posterior(conv(w, "quant_conv", encoder(w, CONFIG, x)))
    decoded = decoder(w, CONFIG, conv(w, "post_quant_conv", mean))
    # A lone ResnetBlock 32 → 64 exercises nin_shortcut, which the tiny model has none of.
    rb = Weights()
    make_resnet(rb, "resblock", 32, 64)
    rb_x = rounded(torch.randn(1, 32, 4, 4, generator=gen))
    tensors = {k: v.to(torch.float16) for k, v in {**w, **rb}.items()}
    tensors.update({"fixture.input": f32(x), "fixture.posterior_mean": f32(mean), "fixture.posterior_logvar": f32(logvar),
                    "fixture.decoded": f32(decoded), "fixture.resblock_input": f32(rb_x),
                    "fixture.resblock_output": f32(resnet_block(rb, "resblock", rb_x))})
    meta = {k: str(v) for k, v in CONFIG.items()}
    save_file(tensors, os.path.join(OUT, "first_stage.safetensors"), metadata=meta)
    print("first stage: mean", mean.abs().mean().item(), "decoded", decoded.abs().mean().item())


# --- loss (contperceptual.LPIPSWithDiscriminator, hinge) ---------------------------------
LOSS = dict(kl_weight=1e-2, disc_weight=0.5, perceptual_weight=1.0, disc_ndf=8, disc_layers=3, logvar=0.0)


def make_discriminator(ndf, n_layers, cin=3):
    """NLayerDiscriminator keys (main.i), weights N(0, 0.02), BN weight N(1, 0.02)."""
    w, layout, i = {}, [], 0

    def add_conv(cin, cout, stride, bias):
        nonlocal i
        w[f"main.{i}.weight"] = rounded(0.02 * torch.randn(cout, cin, 4, 4, generator=gen))
        if bias:
            w[f"main.{i}.bias"] = rounded(0.02 * torch.randn(cout, generator=gen))
        layout.append(("conv", i, stride))
        i += 1

    def add_bn(c):
        nonlocal i
        w[f"main.{i}.weight"] = rounded(1 + 0.02 * torch.randn(c, generator=gen))
        w[f"main.{i}.bias"] = rounded(0.02 * torch.randn(c, generator=gen))
        w[f"main.{i}.running_mean"] = torch.zeros(c, dtype=torch.float64)
        w[f"main.{i}.running_var"] = torch.ones(c, dtype=torch.float64)
        w[f"main.{i}.num_batches_tracked"] = torch.zeros((), dtype=torch.float64)
        layout.append(("bn", i, None))
        i += 1

    def add_lrelu():
        nonlocal i
        layout.append(("lrelu", i, None))
        i += 1

    add_conv(cin, ndf, 2, True); add_lrelu()
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        add_conv(ndf * prev, ndf * mult, 2, False); add_bn(ndf * mult); add_lrelu()
    prev, mult = mult, min(2 ** n_layers, 8)
    add_conv(ndf * prev, ndf * mult, 1, False); add_bn(ndf * mult); add_lrelu()
    add_conv(ndf * mult, 1, 1, True)
    return w, layout


def discriminator(w, layout, x):
    h = x
    for kind, i, stride in layout:
        if kind == "conv":
            h = F.conv2d(h, w[f"main.{i}.weight"], w.get(f"main.{i}.bias"), stride=stride, padding=1)
        elif kind == "bn":  # training mode: batch statistics, as during autoencoder training
            h = F.batch_norm(h, None, None, w[f"main.{i}.weight"], w[f"main.{i}.bias"], training=True, eps=1e-5)
        else:
            h = F.leaky_relu(h, 0.2)
    return h


def loss_fixture(lpips_path):
    lp = {k: v.double() for k, v in load_file(lpips_path).items()}
    x = rounded(torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1)
    features = rounded(torch.randn(2, 8, 32, 32, generator=gen))
    last_w = rounded(torch.randn(3, 8, 3, 3, generator=gen) / 72 ** 0.5).requires_grad_(True)
    last_b = rounded(0.1 * torch.randn(3, generator=gen))
    mean = rounded(torch.randn(2, 4, 8, 8, generator=gen))
    logvar = rounded(torch.randn(2, 4, 8, 8, generator=gen) * 0.5)
    disc, layout = make_discriminator(LOSS["disc_ndf"], LOSS["disc_layers"])

    xr = F.conv2d(features, last_w, last_b, padding=1)  # the decoder's last layer
    rec = (x - xr).abs() + LOSS["perceptual_weight"] * lpips_reference.lpips(lp, x, xr).view(-1, 1, 1, 1)
    nll = rec / torch.exp(torch.tensor(LOSS["logvar"], dtype=torch.float64)) + LOSS["logvar"]
    nll = nll.sum() / x.shape[0]
    kl = (0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(dim=[1, 2, 3])).sum() / x.shape[0]
    g_loss = -discriminator(disc, layout, xr).mean()
    nll_grad = torch.autograd.grad(nll, last_w, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_w, retain_graph=True)[0]
    d_weight = torch.clamp(torch.norm(nll_grad) / (torch.norm(g_grad) + 1e-4), 0.0, 1e4).detach() * LOSS["disc_weight"]
    total = nll + LOSS["kl_weight"] * kl + d_weight * 1.0 * g_loss
    grad_total = torch.autograd.grad(total, last_w)[0]  # d_weight is a constant (detached)
    disc = {k: v.requires_grad_(True) if k.endswith("weight") else v for k, v in disc.items()}
    real, fake = discriminator(disc, layout, x), discriminator(disc, layout, xr.detach())
    d_loss = 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())
    grad_disc = torch.autograd.grad(d_loss, [disc["main.0.weight"], disc["main.5.weight"]])

    # Parameters as float16; BatchNorm buffers (unused in training mode) as float32.
    tensors = {"disc." + k: v.float() if "running" in k or "num_batches" in k else v.detach().to(torch.float16)
               for k, v in disc.items()}
    tensors.update({"fixture.inputs": f32(x), "fixture.features": f32(features), "fixture.last_weight": f32(last_w.detach()),
                    "fixture.last_bias": f32(last_b), "fixture.posterior_mean": f32(mean), "fixture.posterior_logvar": f32(logvar)})
    for name, value in [("nll_loss", nll), ("kl_loss", kl), ("g_loss", g_loss), ("d_weight", d_weight),
                        ("total_loss", total), ("disc_loss", d_loss)]:
        tensors["expected." + name] = f32(value.detach().reshape(1))
    tensors.update({"expected.grad_total_last_weight": f32(grad_total), "expected.grad_disc_loss_main0": f32(grad_disc[0]),
                    "expected.grad_disc_loss_main5": f32(grad_disc[1])})
    save_file(tensors, os.path.join(OUT, "first_stage_loss.safetensors"), metadata={k: str(v) for k, v in LOSS.items()})
    print({k: v.item() for k, v in tensors.items() if k.startswith("expected.") and v.numel() == 1})


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    first_stage_fixture()
    loss_fixture(sys.argv[1])
