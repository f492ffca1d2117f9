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
Distances and kernels are products of float32 features, computed through BLAS in float32 (in row
blocks, each matrix once); sums that nearly cancel are taken in float64.
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


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(a.b / d + 1)^3 for all pairs of rows, float32 products through BLAS."""
    k = a @ b.T
    k *= np.float32(1.0 / a.shape[1])
    k += np.float32(1.0)
    return k * k * k  # np.power(k, 3) is ~10x slower: it goes through pow() for every element


def _kid_by_subsets(real, fake, picks) -> list[float]:
    """The unbiased MMD^2 of each subset pair, computing each subset's kernel matrices (cost ~ number
    of subsets x m^2 x d): cheaper when the sets are much larger than a subset."""
    vals = []
    for r, f in picks:
        x, y = real[r], fake[f]
        m, n = len(x), len(y)
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        vals.append((kxx.sum(dtype=np.float64) - np.trace(kxx, dtype=np.float64)) / (m * (m - 1))
                    + (kyy.sum(dtype=np.float64) - np.trace(kyy, dtype=np.float64)) / (n * (n - 1))
                    - 2 * kxy.sum(dtype=np.float64) / (m * n))
    return vals


def _kid_by_indicators(real, fake, picks, block: int = 1024) -> list[float]:
    """The same, from each full kernel matrix computed once, a block of rows at a time: the sum of a
    kernel over a subset pair is 1_S' K 1_T, so all subsets at once are one product with the matrix of
    their indicators (cost ~ N^2 x (d + number of subsets)): cheaper when N is a few subsets."""
    def indicators(n, cols):
        out = np.zeros((n, len(cols)))
        for j, c in enumerate(cols):
            out[c, j] = 1.0
        return out

    R, F = indicators(len(real), [r for r, _ in picks]), indicators(len(fake), [f for _, f in picks])

    def subset_sums(a, b, A, B, same: bool):  # per subset: sum of k(a_i, b_j) over i in A's, j in B's (i != j if same)
        total = np.zeros(A.shape[1])
        for i in range(0, len(a), block):
            k = _poly_kernel(a[i:i + block], b).astype(np.float64)
            total += np.einsum("ij,ij->j", A[i:i + block], k @ B)
        if same:
            diag = (np.einsum("ij,ij->i", a, a, dtype=np.float64) / a.shape[1] + 1) ** 3
            total -= diag @ A
        return total

    m, n = len(picks[0][0]), len(picks[0][1])
    xx, yy, xy = subset_sums(real, real, R, R, True), subset_sums(fake, fake, F, F, True), subset_sums(real, fake, R, F, False)
    return list(xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n))


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0, method: str = "auto") -> dict[str, float]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over `subsets` random subsets of
    min(subset_size, N) samples from each set (drawn without replacement within a subset). Kernel
    products in float32, sums in float64 (the MMD's terms nearly cancel). method: "subsets" or
    "indicators" (the same numbers up to rounding; "auto" takes the one with less arithmetic)."""
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    picks = [(rng.choice(len(real), m, replace=False), rng.choice(len(fake), m, replace=False))
             for _ in range(subsets)]
    if method == "auto":
        n2 = len(real) ** 2 + len(fake) ** 2 + len(real) * len(fake)
        method = "indicators" if n2 * (real.shape[1] + subsets) < 3 * subsets * m * m * real.shape[1] else "subsets"
    vals = (_kid_by_indicators if method == "indicators" else _kid_by_subsets)(real, fake, picks)
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


def _sq_dists(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Squared distances between the rows of a and b (a2, b2: their squared norms), float32 BLAS."""
    d = a @ b.T
    d *= -2.0
    d += a2[:, None]
    d += b2[None, :]
    return np.maximum(d, 0, out=d)


def _row_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def kth_neighbour_radii(x: np.ndarray, ks, block: int = 512) -> dict[int, np.ndarray]:
    """For each k in ks, the squared distance from each row of x to its k-th nearest other row: one
    distance matrix, computed a block of rows at a time (N x N at once would be 400 MB for N = 10k),
    and one partition per block for all the ks (index 0 of a sorted row is the point itself)."""
    x2, out = _row_norms(x), {k: np.empty(len(x), x.dtype) for k in ks}
    for i in range(0, len(x), block):
        part = np.partition(_sq_dists(x[i:i + block], x, x2[i:i + block], x2), sorted(ks), axis=1)
        for k in ks:
            out[k][i:i + block] = part[:, k]
    return out


def knn_scores(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5, block: int = 512,
               real_radii: dict | None = None) -> dict:
    """Improved precision and recall (k_pr; Kynkaanniemi 2019) and density and coverage (k_dc; Naeem
    2020) in one go: each of the three distance matrices (real-real, fake-fake, real-fake) is computed
    once, in float32 through BLAS and in row blocks, and the real k-NN radii are shared.
      precision  share of fake samples inside some real sample's k_pr-NN ball
      recall     share of real samples inside some fake sample's k_pr-NN ball
      density    mean number of real k_dc-NN balls holding each fake sample, / k_dc
      coverage   share of real samples whose k_dc-NN ball holds some fake sample
    real_radii: kth_neighbour_radii(real, {k_pr, k_dc}) when the caller keeps it (the real set is the
    same at every evaluation of a run)."""
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    r_real = real_radii or kth_neighbour_radii(real, {k_pr, k_dc}, block)
    r_fake = kth_neighbour_radii(fake, {k_pr}, block)
    real2, fake2 = _row_norms(real), _row_norms(fake)
    fake_in_real = np.zeros(len(fake), bool)
    balls_per_fake = np.zeros(len(fake), np.int64)
    real_in_fake, real_covered = np.zeros(len(real), bool), np.zeros(len(real), bool)
    for i in range(0, len(real), block):
        rows = slice(i, i + block)
        d = _sq_dists(real[rows], fake, real2[rows], fake2)  # [real block, fake]
        fake_in_real |= (d <= r_real[k_pr][rows, None]).any(axis=0)
        real_in_fake[rows] = (d <= r_fake[k_pr][None, :]).any(axis=1)
        inside = d <= r_real[k_dc][rows, None]
        balls_per_fake += inside.sum(axis=0)
        real_covered[rows] = inside.any(axis=1)
    return {"precision": float(fake_in_real.mean()), "recall": float(real_in_fake.mean()),
            "density": float(balls_per_fake.sum() / (k_dc * len(fake))), "coverage": float(real_covered.mean())}


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall: a sample is inside a set's manifold if it lies within the k-NN
    radius of some sample of that set (knn_scores)."""
    out = knn_scores(real, fake, k_pr=k, k_dc=k)
    return {"precision": out["precision"], "recall": out["recall"]}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Density and coverage with k-NN balls of the real samples (knn_scores)."""
    out = knn_scores(real, fake, k_pr=k, k_dc=k)
    return {"density": out["density"], "coverage": out["coverage"]}


def class_accuracy(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """For a conditional generator: the share of generated images that a classifier assigns to the
    class they were generated for, overall and per class ({"class_acc": ..., "class_acc_per_class":
    [one share per class]})."""
    right = np.asarray(probs).argmax(axis=1) == np.asarray(labels)
    per_class = [float(right[labels == c].mean()) if (labels == c).any() else float("nan") for c in range(num_classes)]
    return {"class_acc": float(right.mean()), "class_acc_per_class": per_class}
