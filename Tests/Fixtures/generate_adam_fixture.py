"""Reference trajectories of torch.optim.Adam / AdamW for Tests/NNTests/AdamTests.swift.

Run: python3 Tests/Fixtures/generate_adam_fixture.py
Writes Tests/NNTests/Fixtures/adam.json. Doubles and floats are stored as exact hex strings
(float.hex()) so nothing is lost in transit.

Three parameters, six steps with changing gradients and a changing learning rate; the third
parameter has no gradient at step 3, so it is skipped and its step count lags (as torch).
Each case is run in float64 (compared bit for bit) and float32 (compared within 1e-6).

torch's CPU sqrt goes through MKL VML (high-accuracy mode, <= 1 ulp), which is not correctly
rounded for about 1% of inputs, while Swift's squareRoot() is. A trajectory that hits such an
input cannot be reproduced bit for bit by any IEEE implementation, so the generator draws
gradient sequences (seed 0, 1, ...) until every sqrt torch evaluated was correctly rounded,
checked element by element against math.sqrt; the seed used is recorded.
"""
import json
import math
import os

import torch

SHAPES = [[4, 5], [7], [2, 3, 3]]
STEPS = 6
SKIP = (2, 3)  # (parameter index, step index) without a gradient

CASES = [
    dict(name="adam", cls="Adam", lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    # beta1 = 0.5 exercises the other branch of torch's lerp (weight >= 0.5).
    dict(name="adam_weight_decay", cls="Adam", lr=1e-2, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.05),
    dict(name="adamw", cls="AdamW", lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
]


def hexes(t):
    return [float(x).hex() for x in t.detach().flatten().tolist()]


def draw(seed):
    g = torch.Generator().manual_seed(seed)
    init = [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) * (0.05 * (k + 1)) for s in SHAPES]
             for k in range(STEPS)]
    lrs_scale = [1.0 + 0.25 * k for k in range(STEPS)]  # a schedule: lr set before every step
    return init, grads, lrs_scale


def run(case, init, grads, lrs_scale, dtype, check_sqrt):
    params = [p.clone().to(dtype).requires_grad_(True) for p in init]
    cls = getattr(torch.optim, case["cls"])
    opt = cls(params, lr=case["lr"], betas=case["betas"], eps=case["eps"],
              weight_decay=case["weight_decay"], foreach=False, fused=False)
    sqrt_exact = True
    for k in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = case["lr"] * lrs_scale[k]
        for i, p in enumerate(params):
            p.grad = None if (i, k) == SKIP else grads[k][i].to(dtype).clone()
        opt.step()
        if check_sqrt:
            for p in params:
                if p not in opt.state:
                    continue
                v = opt.state[p]["exp_avg_sq"]
                torch_sqrt = v.sqrt().flatten().tolist()
                if any(a != math.sqrt(x) for a, x in zip(torch_sqrt, v.flatten().tolist())):
                    sqrt_exact = False
    state = [opt.state[p] for p in params]
    return params, state, sqrt_exact


def main():
    out = {"shapes": SHAPES, "steps": STEPS, "skip": list(SKIP), "cases": []}
    for case in CASES:
        for seed in range(1000):
            init, grads, lrs_scale = draw(seed)
            p64, s64, exact = run(case, init, grads, lrs_scale, torch.float64, check_sqrt=True)
            if exact:
                break
        else:
            raise SystemExit(f"{case['name']}: no seed with correctly rounded sqrt")
        p32, s32, _ = run(case, init, grads, lrs_scale, torch.float32, check_sqrt=False)
        out["cases"].append({
            "name": case["name"], "decoupled": case["cls"] == "AdamW", "seed": seed,
            "lr": float(case["lr"]).hex(), "lr_scale": [float(x).hex() for x in lrs_scale],
            "beta1": float(case["betas"][0]).hex(), "beta2": float(case["betas"][1]).hex(),
            "eps": float(case["eps"]).hex(), "weight_decay": float(case["weight_decay"]).hex(),
            "init": [hexes(p) for p in init],
            "grads": [[hexes(g) for g in step] for step in grads],
            "final64": [hexes(p) for p in p64],
            "final32": [hexes(p) for p in p32],
            "exp_avg32": [hexes(s["exp_avg"]) for s in s32],
            "exp_avg_sq32": [hexes(s["exp_avg_sq"]) for s in s32],
            "steps32": [int(s["step"].item()) for s in s32],
        })
        print(case["name"], "seed", seed)
    path = os.path.join(os.path.dirname(__file__), "..", "NNTests", "Fixtures", "adam.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
