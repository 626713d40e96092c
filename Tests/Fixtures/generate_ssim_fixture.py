#!/usr/bin/env python3
"""Reference SSIM and PSNR for image pairs, recorded for Tests/EvaluationTests.

Images are 8-bit (stored as raw uint8, pair after pair, image then reference) and reach the
metrics as the Swift side sees them: float32 k / 127.5 - 1 in [-1, 1], then (x + 1) / 2 in
float64. The reference SSIM is a direct float64 implementation of Wang et al. 2004 with an
11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, data range 1, averaged over the valid
positions (the whole window inside the image) and then over channels. When scikit-image is
installed it is cross-checked against structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1), which crops the same border.

usage: python3 Tests/Fixtures/generate_ssim_fixture.py
Writes Tests/EvaluationTests/Fixtures/ssim_pairs.{bin,json}. Never run by CI.
"""
import json
import os

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "EvaluationTests", "Fixtures")
WIN, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def to_unit(k):
    x32 = k.astype(np.float32) / np.float32(127.5) - np.float32(1)
    return np.clip(x32.astype(np.float64) * 0.5 + 0.5, 0, 1)


def window():
    d = np.arange(WIN, dtype=np.float64) - WIN // 2
    g = np.exp(-d * d / (2 * SIGMA * SIGMA))
    g /= g.sum()
    return np.outer(g, g)


def ssim_plane(x, y):
    """Mean SSIM over the valid positions of one [H, W] plane, direct 2-D windowed sums."""
    w = window()
    def filt(z):
        return np.einsum("ijkl,kl->ij", sliding_window_view(z, (WIN, WIN)), w)
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    c1, c2 = K1 ** 2, K2 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


def ssim(a, b):  # [C, H, W] uint8
    x, y = to_unit(a), to_unit(b)
    return float(np.mean([ssim_plane(x[c], y[c]) for c in range(x.shape[0])]))


def psnr(a, b):
    mse = np.mean((to_unit(a) - to_unit(b)) ** 2)
    return float(10 * np.log10(1 / mse))


def u8(z):
    return np.clip(np.rint(z), 0, 255).astype(np.uint8)


def pairs(rng):
    h = w = 32
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    smooth = 128 + 60 * np.sin(xx / 5) * np.cos(yy / 7) + 2 * (xx - yy)
    a = u8(rng.uniform(0, 255, (1, h, w)))
    yield "grey_random_noisy", a, u8(a + rng.normal(0, 20, a.shape))
    a = u8(smooth[None])
    yield "grey_smooth_shifted", a, u8(np.roll(smooth, 1, axis=1)[None] + rng.normal(0, 5, (1, h, w)))
    yield "grey_flat_levels", np.full((1, h, w), 100, np.uint8), np.full((1, h, w), 140, np.uint8)
    yield "rgb_independent_random", u8(rng.uniform(0, 255, (3, h, w))), u8(rng.uniform(0, 255, (3, h, w)))
    checker = ((xx // 4 + yy // 4) % 2) * 200 + 20
    a = u8(np.stack([checker, smooth, 255 - smooth]))
    yield "rgb_structured_contrast", a, u8(0.7 * a.astype(np.float64) + 40)
    a = u8(np.stack([smooth, np.roll(smooth, 5, axis=0), smooth.T]))
    yield "rgb_smooth_noisy", a, u8(a + rng.normal(0, 10, a.shape))


def main():
    rng = np.random.default_rng(20240531)
    try:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    except ImportError:
        structural_similarity = None
        print("scikit-image not installed: skipping the cross-check")
    blob, records = bytearray(), []
    for name, a, b in pairs(rng):
        record = {"name": name, "shape": list(a.shape), "offset": len(blob), "ssim": ssim(a, b), "psnr": psnr(a, b)}
        if structural_similarity is not None:
            sk = structural_similarity(to_unit(a), to_unit(b), gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1, channel_axis=0)
            skp = peak_signal_noise_ratio(to_unit(a), to_unit(b), data_range=1)
            assert abs(sk - record["ssim"]) < 1e-10, (name, sk, record["ssim"])
            assert abs(skp - record["psnr"]) < 1e-10, (name, skp, record["psnr"])
        blob += a.tobytes() + b.tobytes()
        records.append(record)
        print(f"{name:26s} ssim {record['ssim']:.6f}  psnr {record['psnr']:.3f} dB")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ssim_pairs.bin"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(OUT, "ssim_pairs.json"), "w") as f:
        json.dump({"pairs": records, "window": WIN, "sigma": SIGMA, "k1": K1, "k2": K2}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
