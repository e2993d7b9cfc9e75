"""Measures of an edit ``x -> y`` between two mixtures (points: torch tensors or numpy arrays of shape (N, d))."""

from __future__ import annotations

import numpy as np
import torch

from ._checks import check_points
from ._mixture import GaussianMixture

__all__ = [
    "crossing_fraction",
    "energy_distance",
    "nearest_mode",
    "ot_cost",
    "target_log_likelihood",
    "transport_cost",
]


MAX_PAIRWISE = 20_000  # points per sample of energy_distance: its (N, M) distance matrices grow as N M
MAX_ASSIGNMENT = 3_000  # points of ot_cost's exact assignment, O(N^3) (as flowtoy.edit's method "ot")


def _tensor(points, name: str = "points") -> torch.Tensor:
    """Points ``(N, d)`` as a floating tensor (integer or numpy points become float64), checked finite."""
    shape = tuple(points.shape) if hasattr(points, "shape") else np.shape(points)
    if len(shape) != 2:
        raise ValueError(f"{name} must have shape (N, d), got {shape}")
    return check_points(points, name, shape[1])


def _at_most(x: torch.Tensor, limit: int, what: str) -> None:
    if len(x) > limit:
        raise ValueError(
            f"{what} of {len(x)} points is over the limit of {limit}; a larger one runs for hours or exhausts memory"
        )


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _tensor(x, "x"), _tensor(y, "y")
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"x and y must both have shape (N, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y.to(x)


def transport_cost(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared displacement ``mean_i ||y_i - x_i||^2`` (the paper's transport cost)."""
    x, y = _pair(x, y)
    return (y - x).square().sum(-1).mean().item()


def nearest_mode(points: torch.Tensor, mixture: GaussianMixture) -> torch.Tensor:
    """Index of the component mean nearest to each point, shape ``(N,)``."""
    return torch.cdist(_tensor(points).to(mixture.means), mixture.means).argmin(-1)


def crossing_fraction(x: torch.Tensor, y: torch.Tensor, source: GaussianMixture, target: GaussianMixture) -> float:
    """Fraction of points whose edit lands nearest a target mode other than the one nearest their source mode.

    A point's source mode is the source mean nearest to ``x``; that mode's own target is the
    target mean nearest to it. FlowEdit's claim is that this fraction is ~0.
    """
    x, y = _pair(x, y)
    own = torch.cdist(source.means, target.means).argmin(-1)  # (K_src,)
    return (own[nearest_mode(x, source)] != nearest_mode(y, target)).double().mean().item()


def target_log_likelihood(y: torch.Tensor, target: GaussianMixture) -> float:
    """Mean exact ``log p_target(y)``: how well the edits fit the target distribution."""
    return target.log_prob(_tensor(y)).mean().item()


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` between two samples (0 iff same law).

    The V-statistic form: each sample's mean pairwise distance includes its zero diagonal.
    """
    x, y = _tensor(x, "x"), _tensor(y, "y")
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"samples must have shapes (N, d) and (M, d), got {tuple(x.shape)} and {tuple(y.shape)}")
    _at_most(x, MAX_PAIRWISE, "a sample")
    _at_most(y, MAX_PAIRWISE, "a sample")
    y = y.to(x)
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def ot_cost(x: torch.Tensor, y: torch.Tensor) -> float:
    """Optimal-transport cost between two equal-size point sets: ``min_pi mean_i ||x_i - y_pi(i)||^2``.

    Solved exactly as an assignment problem (scipy, O(N^3): keep N in the low thousands). It is a
    lower bound on :func:`transport_cost` of any pairing of ``x`` with the points ``y``.
    """
    from scipy.optimize import linear_sum_assignment

    x, y = _pair(x, y)
    _at_most(x, MAX_ASSIGNMENT, "an exact assignment")
    cost = torch.cdist(x, y).square().cpu().numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())
