#!/usr/bin/env python3
"""Reference fixtures for the LDM UNet, the beta/alpha schedules and the DDIM sampler, computed by
the REFERENCE code of CompVis/latent-diffusion (imported from a checkout given by --reference;
none of that code is copied here).

Writes (all tensors float32 unless the key ends in `.f64`, which are raw F64):
  Tests/ModelsTests/Fixtures/unet_crossattn.safetensors      (a) SpatialTransformer UNet + DDIM/CFG trajectory
  Tests/ModelsTests/Fixtures/unet_adm.safetensors            (b) class-conditional UNet, AttentionBlock, legacy QKV order
  Tests/ModelsTests/Fixtures/unet_attn_new_order.safetensors (c) unconditional UNet, AttentionBlock, new QKV order
  Tests/DiffusionTests/Fixtures/schedules_ddim.safetensors   (d) alphas_cumprod / betas and DDIM parameters

Keys of the UNet files:
  params.<state-dict key>   every parameter of the reference UNetModel, randomly re-initialised
                            (weights N/sqrt(fan_in), biases 0.1·N, norm weights 1+0.1·N, norm biases 0.1·N,
                            label_emb N, with N ~ normal(0, 1)) so that zero_module() layers are NOT zero; rounded to
                            float32 BEFORE the float64 computation, so the stored values are exactly the ones used
  inputs.x (2,4,8,8), inputs.timesteps (2,) = [3, 917], inputs.context (2,3,24) [a], inputs.y (2,) = [1, 4] [b]
  outputs.t_emb             timestep_embedding(timesteps, model_channels) (debug aid)
  outputs.eps               model(x, timesteps, context=..., y=...)
  inputs.x0, inputs.noise (2,4,8,8), inputs.t (2,) = [3, 917]
  outputs.x_t               sqrt(ac[t])·x0 + sqrt(1-ac[t])·noise, ac from make_beta_schedule("linear", 1000,
                            0.0015, 0.0195) in float64 (the Swift side should recompute x_t from x0/noise)
  outputs.eps_t             model(x_t, t, ...)
  outputs.loss (1,)         mean((noise - eps_t)^2)   (= LatentDiffusion.p_losses with l_simple_weight=1,
                            logvar=0, original_elbo_weight=0)
  grads.<state-dict key>    d loss / d param, for every parameter
  ddim.trajectory.*         [a only] DDIMSampler.sample(S=5, eta=0, guidance 3.0) from a fixed x_T:
                            x_T, context, uncond_context, samples, timesteps (the 5 ts fed to the model, in
                            sampling order), x_steps (5,2,4,8,8: x after each step), pred_x0_steps (5,2,4,8,8)
Keys of schedules_ddim (each also as `<key>.f64`, except ddim.*.timesteps):
  betas.<name>, alphas_cumprod.<name> (1000,)  name in linear_0.0015_0.0195, linear_0.00085_0.012, linear_0.0001_0.02,
                            sqrt_linear_0.0001_0.02, sqrt_0.0001_0.02, cosine_0.008 (make_beta_schedule names)
  ddim.<S..._eta...>.{timesteps, alphas, alphas_prev, sigmas, sqrt_one_minus_alphas}  for S50_eta0, S50_eta1,
                            S10_eta0.5 on linear_0.0015_0.0195 (make_ddim_timesteps 'uniform' +
                            make_ddim_sampling_parameters; checked equal to DDIMSampler.make_schedule)
The safetensors metadata holds "config" (JSON: UNetModel kwargs and fixture details) in every file; the output is
byte-for-byte reproducible.

Precision: everything is computed in float64 (model.double(), float64 inputs). The reference casts to
float32 in a few places meant for fp16 training; for the fixture these are neutralised while computing:
  * UNetModel.dtype is set to float64 (forward does `h = x.type(self.dtype)`),
  * Tensor.float() is a no-op on float64 tensors (GroupNorm32.forward, QKVAttention softmax, timestep_embedding)
    (so this script converts with .to(torch.float32)),
  * openaimodel.timestep_embedding builds its frequencies with arange(dtype=float64) (same formula),
  * DDIMSampler.register_buffer does not move to CUDA; the sampler runs with torch default dtype float64, so its
    torch.full(...) coefficients are float64. Its to_torch(...float32) buffers (betas, alphas_cumprod, ...) are
    unused on the DDIM path (ddim_use_original_steps=False); ddim_alphas etc. come from the float64 alphas_cumprod
    passed in the model shim (the real LatentDiffusion holds them as float32 buffers).
As a check the script also runs the unpatched reference in float32 (UNet forward and the DDIM trajectory, the
latter with float32 alphas_cumprod as LatentDiffusion holds them) and prints the max differences.

Run:   python3 Tests/Fixtures/generate_unet_fixtures.py --reference /path/to/latent-diffusion
(needs torch, numpy, safetensors, einops, omegaconf, tqdm, pillow; the reference's own imports). Never run by CI.
"""
import argparse
import contextlib
import copy
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_OUT = os.path.join(HERE, "..", "ModelsTests", "Fixtures")
DIFFUSION_OUT = os.path.join(HERE, "..", "DiffusionTests", "Fixtures")

CONFIG_A = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[2],
                num_res_blocks=1, channel_mult=[1, 2], num_head_channels=16, use_spatial_transformer=True,
                transformer_depth=1, context_dim=24, legacy=False, use_scale_shift_norm=False, dropout=0)
CONFIG_B = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[1, 2],
                num_res_blocks=1, channel_mult=[1, 2], num_heads=2, num_head_channels=-1,
                use_spatial_transformer=False, num_classes=5, use_scale_shift_norm=True, legacy=True,
                resblock_updown=False, dropout=0)
CONFIG_C = dict(image_size=8, in_channels=4, out_channels=4, model_channels=32, attention_resolutions=[1, 2],
                num_res_blocks=1, channel_mult=[1, 2], num_heads=2, num_head_channels=-1,
                use_spatial_transformer=False, num_classes=None, use_scale_shift_norm=False, legacy=True,
                resblock_updown=False, use_new_attention_order=True, dropout=0)

TRAIN_SCHEDULE = dict(schedule="linear", n_timestep=1000, linear_start=0.0015, linear_end=0.0195)
TIMESTEPS = [3.0, 917.0]
LABELS = [1, 4]
DDIM_TRAJ = dict(S=5, eta=0.0, unconditional_guidance_scale=3.0, batch_size=2, shape=[4, 8, 8])


def load_reference(path, commit=None):
    sys.path.insert(0, os.path.abspath(path))
    global openaimodel, dutil, attention, ddim
    import ldm.modules.diffusionmodules.openaimodel as openaimodel
    import ldm.modules.diffusionmodules.util as dutil
    import ldm.modules.attention as attention
    import ldm.models.diffusion.ddim as ddim
    if commit:
        return commit
    try:
        commit = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return commit or "unknown"


@contextlib.contextmanager
def float64_mode():
    """Neutralise the reference's fp16-oriented float32 casts (see the module docstring)."""
    orig_float = torch.Tensor.float
    orig_temb = openaimodel.timestep_embedding
    orig_default = torch.get_default_dtype()

    def keep_f64_float(self, *args, **kwargs):
        if self.dtype == torch.float64:
            return self
        return orig_float(self, *args, **kwargs)

    def timestep_embedding_f64(timesteps, dim, max_period=10000, repeat_only=False):
        # util.timestep_embedding with arange(dtype=float64) and float64 arguments
        assert not repeat_only
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float64) / half)
        args = timesteps[:, None].to(torch.float64) * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    torch.Tensor.float = keep_f64_float
    openaimodel.timestep_embedding = timestep_embedding_f64
    torch.set_default_dtype(torch.float64)
    try:
        yield timestep_embedding_f64
    finally:
        torch.Tensor.float = orig_float
        openaimodel.timestep_embedding = orig_temb
        torch.set_default_dtype(orig_default)


def f32(t):
    """float32-representable values held in float64."""
    return t.to(torch.float32).to(torch.float64)


def reinit(model, gen):
    """Random values for every parameter, in named_parameters() order, rounded to float32."""
    norm_types = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    kinds = {}
    for mname, mod in model.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            key = f"{mname}.{pname}" if mname else pname
            if isinstance(mod, norm_types):
                kinds[key] = "norm_" + pname
            elif isinstance(mod, torch.nn.Embedding):
                kinds[key] = "embedding"
            else:
                kinds[key] = pname
    with torch.no_grad():
        for key, p in model.named_parameters():
            kind = kinds[key]
            n = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if kind == "norm_weight":
                v = 1 + 0.1 * n
            elif kind in ("norm_bias", "bias"):
                v = 0.1 * n
            elif kind == "embedding":
                v = n
            else:
                assert kind == "weight" and p.dim() >= 2, key
                v = n / math.sqrt(p[0].numel())
            p.copy_(f32(v))


def build(config, seed=0):
    torch.manual_seed(seed)
    model = openaimodel.UNetModel(**config)
    gen = torch.Generator().manual_seed(seed)
    model = model.double()
    reinit(model, gen)
    model.dtype = torch.float64  # forward() does h = x.type(self.dtype)
    model.eval()
    return model, gen


def schedule_alphas_cumprod(schedule, n_timestep, **kw):
    betas = dutil.make_beta_schedule(schedule, n_timestep, **kw)
    betas = np.asarray(betas, dtype=np.float64)
    return betas, np.cumprod(1.0 - betas, axis=0)


def cond_kwargs(config, ctx, y):
    kw = {}
    if config.get("context_dim") is not None:
        kw["context"] = ctx
    if config.get("num_classes") is not None:
        kw["y"] = y.long()
    return kw


def float32_reference_diff(model, config, x, t, ctx, y, eps64):
    """Unpatched reference in float32 on the same (float32) values: sanity check of the patches."""
    m32 = copy.deepcopy(model).float()
    m32.dtype = torch.float32
    kw = cond_kwargs(config, ctx.float() if ctx is not None else None, y)
    with torch.no_grad():
        eps32 = m32(x.float(), t.float(), **kw)
    return (eps32.double() - eps64).abs().max().item()


class CPUDDIMSampler:
    """Wraps ddim.DDIMSampler so that register_buffer keeps tensors on the CPU (reference moves to CUDA)."""

    @staticmethod
    def make(model):
        class _S(ddim.DDIMSampler):
            def register_buffer(self, name, attr):
                setattr(self, name, attr)
        return _S(model)


class ModelShim:
    """The attributes of LatentDiffusion that DDIMSampler touches (ddim_use_original_steps=False path)."""

    def __init__(self, unet, betas, dtype=torch.float64):
        ac = np.cumprod(1.0 - betas, axis=0)
        self.unet = unet
        self.num_timesteps = int(betas.shape[0])
        self.betas = torch.tensor(betas, dtype=dtype)
        self.alphas_cumprod = torch.tensor(ac, dtype=dtype)
        self.alphas_cumprod_prev = torch.tensor(np.append(1.0, ac[:-1]), dtype=dtype)
        self.device = torch.device("cpu")

    def apply_model(self, x, t, c):
        # LatentDiffusion.apply_model wraps a tensor cond as {'c_crossattn': [c]}; DiffusionWrapper('crossattn')
        # then calls diffusion_model(x, t, context=torch.cat([c], 1)).
        return self.unet(x, t, context=c)


def unet_fixture(name, config, commit, with_ddim=False):
    model, gen = build(config)
    rnd = lambda *shape: f32(torch.randn(*shape, generator=gen, dtype=torch.float64))
    state = model.state_dict()
    tensors = {f"params.{k}": v.to(torch.float32).contiguous() for k, v in state.items()}
    assert len(state) == len(list(model.parameters())), "unexpected buffers in the UNet state dict"

    has_ctx = config.get("context_dim") is not None
    has_y = config.get("num_classes") is not None
    x = rnd(2, 4, 8, 8)
    timesteps = torch.tensor(TIMESTEPS, dtype=torch.float64)
    ctx = rnd(2, 3, config["context_dim"]) if has_ctx else None
    y = torch.tensor(LABELS, dtype=torch.float64) if has_y else None
    x0 = rnd(2, 4, 8, 8)
    noise = rnd(2, 4, 8, 8)
    t_train = torch.tensor(TIMESTEPS, dtype=torch.float64)

    betas, ac = schedule_alphas_cumprod(TRAIN_SCHEDULE["schedule"], TRAIN_SCHEDULE["n_timestep"],
                                        linear_start=TRAIN_SCHEDULE["linear_start"],
                                        linear_end=TRAIN_SCHEDULE["linear_end"])
    summary = {}
    with float64_mode() as temb:
        kw = cond_kwargs(config, ctx, y)
        with torch.no_grad():
            eps = model(x, timesteps, **kw)
            t_emb = temb(timesteps, config["model_channels"])
        ac_t = torch.tensor(ac, dtype=torch.float64)[t_train.long()].reshape(-1, 1, 1, 1)
        x_t = ac_t.sqrt() * x0 + (1 - ac_t).sqrt() * noise
        model.zero_grad()
        eps_t = model(x_t, t_train.long(), **kw)
        loss = torch.mean((noise - eps_t) ** 2)
        loss.backward()
        grads = {f"grads.{k}": p.grad.detach().to(torch.float32).contiguous() for k, p in model.named_parameters()}
        missing = [k for k, p in model.named_parameters() if p.grad is None]
        assert not missing, missing

        if has_ctx and with_ddim:
            uncond = rnd(2, 3, config["context_dim"])
            x_T = rnd(2, *DDIM_TRAJ["shape"])
            shim = ModelShim(model, betas)
            sampler = CPUDDIMSampler.make(shim)
            steps = []
            orig_step = sampler.p_sample_ddim

            def recording_step(x_in, c, t, index, **skw):
                x_prev, pred_x0 = orig_step(x_in, c, t, index, **skw)
                steps.append((t[0].item(), x_prev, pred_x0))
                return x_prev, pred_x0

            sampler.p_sample_ddim = recording_step
            ddim_kw = dict(S=DDIM_TRAJ["S"], batch_size=DDIM_TRAJ["batch_size"], shape=tuple(DDIM_TRAJ["shape"]),
                           eta=DDIM_TRAJ["eta"], verbose=False,
                           unconditional_guidance_scale=DDIM_TRAJ["unconditional_guidance_scale"])
            samples, _ = sampler.sample(conditioning=ctx, unconditional_conditioning=uncond, x_T=x_T, **ddim_kw)
            assert samples.dtype == torch.float64, samples.dtype
            assert torch.equal(samples, steps[-1][1])
            assert torch.as_tensor(sampler.ddim_alphas).dtype == torch.float64
            tensors.update({
                "ddim.trajectory.x_T": x_T.to(torch.float32),
                "ddim.trajectory.context": ctx.to(torch.float32),
                "ddim.trajectory.uncond_context": uncond.to(torch.float32),
                "ddim.trajectory.samples": samples.to(torch.float32),
                "ddim.trajectory.timesteps": torch.tensor([s[0] for s in steps], dtype=torch.float32),
                "ddim.trajectory.x_steps": torch.stack([s[1] for s in steps]).to(torch.float32),
                "ddim.trajectory.pred_x0_steps": torch.stack([s[2] for s in steps]).to(torch.float32),
            })
            summary["ddim_timesteps"] = [s[0] for s in steps]
            m32 = copy.deepcopy(model).to(torch.float32)
            m32.dtype = torch.float32
            ddim_kw = dict(ddim_kw)
            summary["max|samples|"] = samples.abs().max().item()

    if has_ctx and with_ddim:
        sampler32 = CPUDDIMSampler.make(ModelShim(m32, betas, dtype=torch.float32))
        with torch.no_grad():
            s32, _ = sampler32.sample(conditioning=ctx.float(), unconditional_conditioning=uncond.float(),
                                      x_T=x_T.float(), **ddim_kw)
        summary["float32_reference_max_diff_samples"] = (s32.double() - samples).abs().max().item()

    tensors.update({
        "inputs.x": x.to(torch.float32), "inputs.timesteps": timesteps.to(torch.float32),
        "outputs.t_emb": t_emb.to(torch.float32), "outputs.eps": eps.to(torch.float32),
        "inputs.x0": x0.to(torch.float32), "inputs.noise": noise.to(torch.float32), "inputs.t": t_train.to(torch.float32),
        "outputs.x_t": x_t.detach().to(torch.float32), "outputs.eps_t": eps_t.detach().to(torch.float32),
        "outputs.loss": loss.detach().reshape(1).to(torch.float32),
    })
    if has_ctx:
        tensors["inputs.context"] = ctx.to(torch.float32)
    if has_y:
        tensors["inputs.y"] = y.to(torch.float32)
    tensors.update(grads)

    # checks
    summary["max|eps|"] = eps.abs().max().item()
    summary["max|eps_t|"] = eps_t.abs().max().item()
    summary["loss"] = loss.item()
    summary["float32_reference_max_diff_eps"] = float32_reference_diff(model, config, x, timesteps, ctx, y, eps)
    zero_init = [k for k in state if k.endswith(".weight") and (
        k.startswith("out.2.") or ".out_layers.3." in k or ".proj_out." in k)]
    summary["min_over_zero_init_layers(max|grad|)"] = min(grads[f"grads.{k}"].abs().max().item() for k in zero_init)
    summary["zero_init_layers"] = len(zero_init)
    summary["max|param|"] = max(v.abs().max().item() for k, v in tensors.items() if k.startswith("params."))
    if not has_ctx:
        # how strongly the fixture discriminates the QKV split order (legacy vs new)
        other = copy.deepcopy(model)
        for mod in other.modules():
            if isinstance(mod, openaimodel.AttentionBlock):
                n = mod.attention.n_heads
                legacy = isinstance(mod.attention, openaimodel.QKVAttentionLegacy)
                mod.attention = openaimodel.QKVAttention(n) if legacy else openaimodel.QKVAttentionLegacy(n)
        with float64_mode(), torch.no_grad():
            summary["max|eps - eps(other qkv order)|"] = (other(x, timesteps, **kw) - eps).abs().max().item()

    cfg = {"fixture": name, "unet": config, "reference": f"CompVis/latent-diffusion@{commit}",
           "computed_dtype": "float64", "stored_dtype": "float32",
           "param_init": "seed 0; N~normal(0,1): weights N/sqrt(fan_in), biases 0.1N, norm weight 1+0.1N, "
                         "norm bias 0.1N, label_emb N; rounded to float32 before use",
           "timesteps": TIMESTEPS, "train_t": TIMESTEPS, "train_schedule": TRAIN_SCHEDULE,
           "loss": "mean((noise - model(x_t, t))^2) over all elements"}
    if has_y:
        cfg["labels"] = LABELS
    if has_ctx and with_ddim:
        cfg["ddim_trajectory"] = dict(DDIM_TRAJ, schedule=TRAIN_SCHEDULE, ddim_discretize="uniform",
                                      cfg_formula="e_u + scale*(e_c - e_u); model batch = cat([uncond, cond])",
                                      sampler_dtype="float64")
    for k, v in tensors.items():
        assert v.dtype == torch.float32, (k, v.dtype)
    path = os.path.join(MODELS_OUT, name + ".safetensors")
    save_file(tensors, path, metadata={"config": json.dumps(cfg)})
    return path, cfg, summary, list(state.keys())


def schedules_fixture(commit):
    specs = [
        ("linear_0.0015_0.0195", "linear", dict(linear_start=0.0015, linear_end=0.0195)),
        ("linear_0.00085_0.012", "linear", dict(linear_start=0.00085, linear_end=0.012)),
        ("linear_0.0001_0.02", "linear", dict(linear_start=1e-4, linear_end=2e-2)),
        ("sqrt_linear_0.0001_0.02", "sqrt_linear", dict(linear_start=1e-4, linear_end=2e-2)),
        ("sqrt_0.0001_0.02", "sqrt", dict(linear_start=1e-4, linear_end=2e-2)),
        ("cosine_0.008", "cosine", dict(cosine_s=8e-3)),
    ]
    tensors, cfg = {}, {"reference": f"CompVis/latent-diffusion@{commit}", "n_timestep": 1000, "schedules": {},
                        "ddim": {}}
    first_ac = None
    for key, sched, kw in specs:
        betas, ac = schedule_alphas_cumprod(sched, 1000, **kw)
        if first_ac is None:
            first_ac = ac
        for pre, arr in (("betas", betas), ("alphas_cumprod", ac)):
            t = torch.from_numpy(arr.copy())
            tensors[f"{pre}.{key}"] = t.to(torch.float32)
            tensors[f"{pre}.{key}.f64"] = t
        cfg["schedules"][key] = dict(schedule=sched, **kw)
    ac_t = torch.from_numpy(first_ac.copy())  # DDIMSampler passes alphas_cumprod.cpu() (a tensor)
    for S, eta in ((50, 0.0), (50, 1.0), (10, 0.5)):
        name = f"ddim.S{S}_eta{eta:g}"
        ts = dutil.make_ddim_timesteps("uniform", S, 1000, verbose=False)
        sigmas, alphas, alphas_prev = dutil.make_ddim_sampling_parameters(ac_t, ts, eta, verbose=False)
        vals = {"timesteps": np.asarray(ts, dtype=np.float64)}
        for k, v in (("alphas", alphas), ("alphas_prev", alphas_prev), ("sigmas", sigmas)):
            vals[k] = np.asarray(torch.as_tensor(v, dtype=torch.float64).numpy(), dtype=np.float64)
        vals["sqrt_one_minus_alphas"] = np.sqrt(1.0 - vals["alphas"])
        # the same numbers as DDIMSampler.make_schedule produces
        shim = ModelShim(None, np.asarray(dutil.make_beta_schedule("linear", 1000, 0.0015, 0.0195)))
        sampler = CPUDDIMSampler.make(shim)
        sampler.make_schedule(S, ddim_eta=eta, verbose=False)
        assert np.array_equal(sampler.ddim_timesteps, ts)
        for k in ("alphas", "alphas_prev", "sigmas", "sqrt_one_minus_alphas"):
            assert np.allclose(np.asarray(torch.as_tensor(getattr(sampler, "ddim_" + k)), dtype=np.float64),
                               vals[k], rtol=0, atol=1e-15), k
        for k, v in vals.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            tensors[f"{name}.{k}"] = t.to(torch.float32)
            if k != "timesteps":
                tensors[f"{name}.{k}.f64"] = t
        cfg["ddim"][name] = dict(S=S, eta=eta, ddim_discretize="uniform", schedule="linear_0.0015_0.0195")
    os.makedirs(DIFFUSION_OUT, exist_ok=True)
    path = os.path.join(DIFFUSION_OUT, "schedules_ddim.safetensors")
    save_file(tensors, path, metadata={"config": json.dumps(cfg)})
    return path, cfg, tensors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="checkout of CompVis/latent-diffusion (contains ldm/)")
    ap.add_argument("--commit", help="reference commit to record (default: git rev-parse HEAD in --reference)")
    args = ap.parse_args()
    commit = load_reference(args.reference, args.commit)
    os.makedirs(MODELS_OUT, exist_ok=True)
    for name, cfg, with_ddim in (("unet_crossattn", CONFIG_A, True), ("unet_adm", CONFIG_B, False),
                                 ("unet_attn_new_order", CONFIG_C, False)):
        path, meta, summary, keys = unet_fixture(name, cfg, commit, with_ddim)
        print(f"== {os.path.relpath(path)}  {os.path.getsize(path) / 1e6:.2f} MB, {len(keys)} params")
        print("config:", json.dumps(meta))
        for k, v in summary.items():
            print(f"  {k}: {v}")
    path, meta, tensors = schedules_fixture(commit)
    print(f"== {os.path.relpath(path)}  {os.path.getsize(path) / 1e6:.2f} MB, {len(tensors)} tensors")
    print("config:", json.dumps(meta))
    for k in ("ddim.S50_eta0", "ddim.S50_eta1", "ddim.S10_eta0.5"):
        print(f"  {k}: timesteps[:3]={tensors[k + '.timesteps'][:3].tolist()} "
              f"alphas_prev[0]={tensors[k + '.alphas_prev.f64'][0].item():.10f} "
              f"sigmas[:2]={tensors[k + '.sigmas.f64'][:2].tolist()}")


if __name__ == "__main__":
    main()
