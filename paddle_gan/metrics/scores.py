"""Plain NumPy functions from feature sets (or class probabilities) to scores.

All take float arrays [N, D] and return a dict of plain floats, so the trainer, tools/eval.py and
tests share them. Formulas:
  FID        |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^1/2)              (Heusel et al. 2017)
  KID        unbiased MMD^2, kernel k(x, y) = (x.y / d + 1)^3, mean and std over random subsets
                                                                            (Binkowski et al. 2018)
  IS         exp(E_x KL(p(y|x) || p(y))), mean and std over splits           (Salimans et al. 2016)
  precision / recall   share of fake (real) samples inside the real (fake) k-NN manifold, k = 3
                                                                            (Kynkaanniemi et al. 2019)
  density / coverage   k-NN ball counts, k = 5                               (Naeem et al. 2020)
"""
from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64."""
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Tr((S1 S2)^1/2) is taken as the sum of square roots of the eigenvalues of S1^1/2 S2 S1^1/2, a
    symmetric PSD matrix with the same eigenvalues as S1 S2: no complex parts to discard, unlike
    scipy.linalg.sqrtm on the non-symmetric product."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    r = _sqrt_psd(s1)
    eig = np.linalg.eigvalsh((r @ s2 @ r + (r @ s2 @ r).T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _poly_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> dict[str, float]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over `subsets` random subsets of
    min(subset_size, N) samples from each set (drawn without replacement within a subset)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    vals = [_poly_mmd2_unbiased(real[rng.choice(len(real), m, replace=False)],
                                fake[rng.choice(len(fake), m, replace=False)]) for _ in range(subsets)]
    return {"kid": float(np.mean(vals)), "kid_std": float(np.std(vals))}


def inception_score(probs: np.ndarray, splits: int = 10) -> dict[str, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split of the samples; mean and std over the splits."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(py, 1e-12, None)))).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return {"is": float(np.mean(scores)), "is_std": float(np.std(scores))}


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.clip(d, 0, None)


def _kth_neighbour_radius(x: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row (in row chunks: N x N
    distances for N = 10k would be 800 MB at once)."""
    out = np.empty(len(x))
    for i in range(0, len(x), chunk):
        d = _sq_dists(x[i:i + chunk], x)
        out[i:i + chunk] = np.partition(d, k, axis=1)[:, k]  # index 0 of a sorted row is the point itself
    return out


def _inside_counts(real: np.ndarray, r_real: np.ndarray, fake: np.ndarray, chunk: int = 2048):
    """For each fake sample, how many real k-NN balls hold it; for each real sample, whether its ball
    holds any fake sample."""
    per_fake, real_hit = np.zeros(len(fake), np.int64), np.zeros(len(real), bool)
    for i in range(0, len(real), chunk):
        inside = _sq_dists(real[i:i + chunk], fake) <= r_real[i:i + chunk, None]  # [real chunk, fake]
        per_fake += inside.sum(axis=0)
        real_hit[i:i + chunk] = inside.any(axis=1)
    return per_fake, real_hit


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall: a sample is inside a set's manifold if it lies within the k-NN
    radius of some sample of that set."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    in_real, _ = _inside_counts(real, _kth_neighbour_radius(real, k), fake)
    in_fake, _ = _inside_counts(fake, _kth_neighbour_radius(fake, k), real)
    return {"precision": float((in_real > 0).mean()), "recall": float((in_fake > 0).mean())}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Density: mean number of real k-NN balls holding each fake sample, divided by k.
    Coverage: share of real samples whose k-NN ball holds at least one fake sample."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    per_fake, real_hit = _inside_counts(real, _kth_neighbour_radius(real, k), fake)
    return {"density": float(per_fake.sum() / (k * len(fake))), "coverage": float(real_hit.mean())}


def class_accuracy(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """For a conditional generator: the share of generated images that a classifier assigns to the
    class they were generated for, overall and per class ({"class_acc": ..., "class_acc_per_class":
    [one share per class]})."""
    right = np.asarray(probs).argmax(axis=1) == np.asarray(labels)
    per_class = [float(right[labels == c].mean()) if (labels == c).any() else float("nan") for c in range(num_classes)]
    return {"class_acc": float(right.mean()), "class_acc_per_class": per_class}
