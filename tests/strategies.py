"""Hypothesis strategies for valid mixtures, times, points and grids, and dtype-relative tolerances."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from flowtoy import GaussianMixture

EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def arrays(shape: tuple[int, ...], lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    n = int(np.prod(shape)) if shape else 1
    return st.lists(floats(lo, hi), min_size=n, max_size=n).map(
        lambda xs: np.array(xs, dtype=np.float64).reshape(shape)
    )


@st.composite
def rotations(draw, d: int) -> np.ndarray:
    """A random orthogonal matrix (QR of a Gaussian-like matrix; falls back to I if degenerate)."""
    a = draw(arrays((d, d), -1.0, 1.0)) + 2.0 * np.eye(d)
    q, r = np.linalg.qr(a)
    return q * np.sign(np.diag(r))


@st.composite
def covariances(draw, K: int, d: int, spread: tuple[float, float]):
    """A covariance argument of every accepted form: scalar, (K,), (K, d) or (K, d, d)."""
    lo, hi = spread
    kind = draw(st.sampled_from(["scalar", "per-component", "diagonal", "full"]))
    if kind == "scalar":
        return draw(floats(lo, hi))
    if kind == "per-component":
        return draw(arrays((K,), lo, hi))
    if kind == "diagonal":
        return draw(arrays((K, d), lo, hi))
    lam = draw(arrays((K, d), lo, hi))
    U = np.stack([draw(rotations(d)) for _ in range(K)])
    return U @ (lam[:, :, None] * U.transpose(0, 2, 1))


@st.composite
def mixtures(
    draw,
    dims: tuple[int, int] = (1, 3),
    components: tuple[int, int] = (1, 4),
    mean_range: float = 4.0,
    spread: tuple[float, float] = (0.2, 3.0),
) -> GaussianMixture:
    """A valid mixture: ``d`` and ``K`` in the given ranges, variances (eigenvalues) in ``spread``."""
    d = draw(st.integers(*dims))
    K = draw(st.integers(*components))
    means = draw(arrays((K, d), -mean_range, mean_range))
    raw = draw(arrays((K,), 0.2, 1.0))
    return GaussianMixture(means, draw(covariances(K, d, spread)), raw / raw.sum())


def times(interior: bool = False) -> st.SearchStrategy[float]:
    if interior:
        return floats(0.02, 0.98)
    return st.one_of(st.sampled_from([0.0, 1.0]), floats(0.0, 1.0))


def points(d: int, n: int = 5, scale: float = 6.0) -> st.SearchStrategy[torch.Tensor]:
    return arrays((n, d), -scale, scale).map(torch.from_numpy)


@st.composite
def grids(draw, min_steps: int = 1, max_steps: int = 12) -> torch.Tensor:
    """A strictly decreasing grid from 1 to 0 with random (not too uneven) steps."""
    steps = draw(st.integers(min_steps, max_steps))
    widths = np.array(draw(st.lists(floats(0.2, 1.0), min_size=steps, max_size=steps)))
    ts = 1.0 - np.concatenate([[0.0], np.cumsum(widths) / widths.sum()])
    ts[-1] = 0.0
    return torch.from_numpy(ts)


def scale_of(*tensors: torch.Tensor) -> float:
    """1 + the largest magnitude among the arguments: the scale that rounding errors are relative to."""
    return 1.0 + max(float(t.abs().max()) for t in tensors)
