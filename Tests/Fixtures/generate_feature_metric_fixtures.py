"""Reference values for the feature-space metrics (Fréchet distance, precision/recall,
Inception-Score-style score), computed independently with numpy/scipy the way the
published implementations do (pytorch-fid's calculate_frechet_distance with scipy's sqrtm;
the k-NN manifolds of Kynkäänniemi et al. 2019).

    python Tests/Fixtures/generate_feature_metric_fixtures.py
writes Tests/EvaluationTests/Fixtures/feature_metrics.json.
"""
import json
import os

import numpy as np
from scipy import linalg

rng = np.random.default_rng(20261201)


def frechet(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1.dot(s2))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fd_case(n1, n2, d):
    a = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d)) * 0.5 + rng.normal(size=d)
    b = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.7 + rng.normal(size=d)
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mu1, s1 = a64.mean(0), np.cov(a64, rowvar=False)
    mu2, s2 = b64.mean(0), np.cov(b64, rowvar=False)
    return {"dimension": d, "a": a.ravel().tolist(), "b": b.ravel().tolist(),
            "mean_a": mu1.tolist(), "cov_a": s1.ravel().tolist(), "fd": frechet(mu1, s1, mu2, s2)}


def manifold_radii(x, k):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    return np.sort(d, axis=1)[:, k]  # index 0 is the point itself


def precision_recall(real, fake, k):
    rr, rf = manifold_radii(real, k), manifold_radii(fake, k)
    d_fr = np.sqrt(((fake[:, None, :] - real[None, :, :]) ** 2).sum(-1))
    precision = float((d_fr <= rr[None, :]).any(1).mean())
    recall = float((d_fr.T <= rf[None, :]).any(1).mean())
    return precision, recall


def pr_case(nr, nf, d, shift, k=3):
    real = rng.normal(size=(nr, d)).astype(np.float32)
    fake = (rng.normal(size=(nf, d)) * 1.5 + shift).astype(np.float32)
    p, r = precision_recall(real.astype(np.float64), fake.astype(np.float64), k)
    return {"dimension": d, "k": k, "real": real.ravel().tolist(), "fake": fake.ravel().tolist(),
            "precision": p, "recall": r}


def is_case(n, c):
    logits = (rng.normal(size=(n, c)) * 3).astype(np.float32)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    py = p.mean(0)
    kl = (p * (np.log(p) - np.log(py)[None, :])).sum(1).mean()
    labels = rng.integers(0, c, size=n)
    return {"classes": c, "logits": logits.ravel().tolist(), "labels": labels.tolist(),
            "inception_score": float(np.exp(kl)), "accuracy": float((p.argmax(1) == labels).mean())}


fixture = {
    "frechet": [fd_case(40, 55, 6), fd_case(120, 90, 16)],
    "precision_recall": [pr_case(60, 50, 2, 1.5), pr_case(120, 90, 5, 1.0)],
    "inception": [is_case(64, 10)],
}
out = os.path.join(os.path.dirname(__file__), "..", "EvaluationTests", "Fixtures", "feature_metrics.json")
with open(out, "w") as f:
    json.dump(fixture, f)
print("wrote", os.path.normpath(out))
