"""First-layer filters against Gaussian derivatives and the PCA of natural image patches (the lecture's
receptive-field slide).

The number: ``explained_energy(filters, basis)`` = sum over filters of |projection onto span(basis)|^2
divided by sum of |filter|^2 (least-squares projection of each 2-D filter slice; a colour filter counts
as one slice per input channel). With the basis = the first k Gaussian derivatives at a sigma
(orders in the order (0,0), (1,0), (0,1), (2,0), (1,1), (0,2): smoothing, two gradients, three second
derivatives), it says how much of a learned first layer is "Gaussian derivative"; a random filter bank
gives about k / (size * size) in expectation at a fixed sigma (a little more when sigma is fitted, as
``best_sigma_energy`` does: compare a learned bank with a random bank of the same shape under the same
search).
"""

from __future__ import annotations

import numpy as np

# (order in y, order in x), lowest first
DERIVATIVE_ORDERS = ((0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2))
NATURAL_IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "grass", "brick", "gravel", "coins")


def _gaussian_1d(size: int, sigma: float, order: int) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    if order == 0:
        return g
    if order == 1:
        return -x / sigma ** 2 * g
    if order == 2:
        return (x ** 2 / sigma ** 4 - 1 / sigma ** 2) * g
    raise ValueError(f"order must be 0, 1 or 2, got {order}")


def gaussian_derivative(size: int, sigma: float, order_y: int, order_x: int) -> np.ndarray:
    """(size, size) derivative of a Gaussian, sampled at pixel centres, unit L2 norm."""
    if size < 1 or sigma <= 0:
        raise ValueError(f"size must be >= 1 and sigma > 0, got {size}, {sigma}")
    f = np.outer(_gaussian_1d(size, sigma, order_y), _gaussian_1d(size, sigma, order_x))
    norm = np.linalg.norm(f)
    return f / norm if norm > 0 else f


def gaussian_derivative_basis(size: int, sigma: float, k: int = 6) -> np.ndarray:
    """(k, size, size): the first ``k`` (1..6) Gaussian derivatives of ``DERIVATIVE_ORDERS``."""
    if not 1 <= k <= len(DERIVATIVE_ORDERS):
        raise ValueError(f"k must be in 1..{len(DERIVATIVE_ORDERS)}, got {k}")
    return np.stack([gaussian_derivative(size, sigma, oy, ox) for oy, ox in DERIVATIVE_ORDERS[:k]])


def gaussian_derivative_bank(size: int, sigmas=(1.0, 2.0, 4.0), max_order: int = 2) -> np.ndarray:
    """(len(sigmas) * number of orders, size, size): all derivatives up to ``max_order`` at each sigma."""
    orders = [o for o in DERIVATIVE_ORDERS if sum(o) <= max_order]
    return np.stack([gaussian_derivative(size, s, oy, ox) for s in sigmas for oy, ox in orders])


def _slices(filters) -> np.ndarray:
    f = np.asarray(filters.detach().cpu().numpy() if hasattr(filters, "detach") else filters, dtype=np.float64)
    if f.ndim < 2:
        raise ValueError(f"filters must have at least 2 dimensions (..., h, w), got shape {f.shape}")
    return f.reshape(-1, f.shape[-2] * f.shape[-1])


def explained_energy(filters, basis) -> float:
    """Fraction of the filters' energy in the span of ``basis`` (see module doc); filters (..., h, w),
    basis (k, h, w)."""
    f, b = _slices(filters), _slices(basis)
    if f.shape[1] != b.shape[1]:
        raise ValueError(f"filters and basis sizes differ: {f.shape[1]} vs {b.shape[1]} pixels")
    total = (f ** 2).sum()
    if total == 0:
        raise ValueError("filters are all zero")
    q, _ = np.linalg.qr(b.T)                     # orthonormal basis of the span (h*w, k)
    rank = np.linalg.matrix_rank(b)
    projected = f @ q[:, :rank]
    return float((projected ** 2).sum() / total)


def gaussian_derivative_energy(filters, sigma: float, k: int = 6) -> float:
    """``explained_energy`` of the first ``k`` Gaussian derivatives at ``sigma``."""
    size = _slices(filters).shape[1]
    side = int(round(np.sqrt(size)))
    return explained_energy(filters, gaussian_derivative_basis(side, sigma, k))


def best_sigma_energy(filters, k: int = 6, sigmas=None) -> tuple[float, float]:
    """(sigma, energy fraction) of the sigma on a grid (default 0.5 .. size/2) that explains the most."""
    side = int(round(np.sqrt(_slices(filters).shape[1])))
    sigmas = np.geomspace(0.5, max(side / 2, 0.6), 16) if sigmas is None else sigmas
    scores = [gaussian_derivative_energy(filters, s, k) for s in sigmas]
    best = int(np.argmax(scores))
    return float(sigmas[best]), float(scores[best])


def natural_image_patches(size: int, count: int = 10000, seed: int = 0, images=NATURAL_IMAGES) -> np.ndarray:
    """(count, size, size) grey patches of shipped images at random positions, each with its mean removed."""
    from fastcnn.data.features import load_image
    rng = np.random.default_rng(seed)
    sources = [load_image(name, gray=True) for name in images]
    out = np.empty((count, size, size), dtype=np.float64)
    for n in range(count):
        img = sources[rng.integers(len(sources))]
        y, x = rng.integers(0, img.shape[0] - size + 1), rng.integers(0, img.shape[1] - size + 1)
        out[n] = img[y:y + size, x:x + size]
    return out - out.mean(axis=(1, 2), keepdims=True)


def patch_pca(patches, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` principal components (k, h, w) of patches (N, h, w), and the fraction of variance
    each explains."""
    p = np.asarray(patches, dtype=np.float64)
    flat = p.reshape(len(p), -1)
    flat = flat - flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    variance = s ** 2 / (s ** 2).sum()
    return vt[:k].reshape(k, *p.shape[1:]), variance[:k]


def plot_filter_comparison(learned, path, sigma: float | None = None, k: int = 6, pca_count: int = 20000,
                           title: str = "") -> dict:
    """PNG at ``path``: rows of the learned filters (each slice), the first ``k`` Gaussian derivatives
    at ``sigma`` (default: the best fitting one) and the first principal components of natural image
    patches of the same size. Returns {"sigma", "energy_gaussian", "energy_pca"}: the explained energies."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slices = _slices(learned)
    side = int(round(np.sqrt(slices.shape[1])))
    slices = slices.reshape(-1, side, side)
    if sigma is None:
        sigma, _ = best_sigma_energy(slices, k)
    gauss = gaussian_derivative_basis(side, sigma, k)
    pca, _ = patch_pca(natural_image_patches(side, pca_count), k)
    result = {"sigma": float(sigma), "energy_gaussian": explained_energy(slices, gauss),
              "energy_pca": explained_energy(slices, pca)}
    cols = max(min(len(slices), 16), k)
    rows = [("learned", slices[:cols]), (f"Gaussian derivatives, sigma {sigma:.2f} "
             f"({100 * result['energy_gaussian']:.0f}% of energy)", gauss),
            (f"PCA of natural patches ({100 * result['energy_pca']:.0f}% of energy)", pca)]
    fig, axes = plt.subplots(3, cols, figsize=(cols * 0.9, 3 * 1.15), squeeze=False)
    for r, (label, filters) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(filters):
                limit = np.abs(filters[c]).max() or 1.0
                ax.imshow(filters[c], cmap="gray", vmin=-limit, vmax=limit, interpolation="nearest")
        axes[r, 0].set_title(label, loc="left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.85 if title else 0.9, hspace=0.45, wspace=0.1)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return result
