"""What the toy's figures share: point arrays, mode colours, limits, contours, means and legends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba_array
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import metrics
from ._mixture import GaussianMixture

Points = torch.Tensor | np.ndarray
PALETTE = to_rgba_array([f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "cyan")])
DOT = {"s": 4, "linewidths": 0, "alpha": 0.6, "rasterized": True}  # scatter style of point clouds
# log p drops by r^2 / 2 at Mahalanobis radius r: contours at r = 1, 2, 3 of the highest mode
_LEVELS = (-4.5, -2.0, -0.5)


def mode_colors(labels: Points | Sequence[int]) -> np.ndarray:
    """RGBA colours ``(N, 4)`` for integer mode labels ``(N,)``: 0 is tab:blue, 1 tab:orange, then tab10 on."""
    labels = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise ValueError(f"labels must be a 1-D array of non-negative integers, got {labels.dtype} {labels.shape}")
    return PALETTE[labels % len(PALETTE)]


def as_array(points: Points, name: str, ndim: int = 2) -> np.ndarray:
    a = points.detach().cpu().numpy() if torch.is_tensor(points) else np.asarray(points)
    if a.ndim != ndim or a.shape[-1] != 2:
        shape = "(N, 2)" if ndim == 2 else "(S, N, 2)"
        raise ValueError(f"{name} must have shape {shape} (2-D points), got {a.shape}")
    return a.astype(np.float64)


def nearest_modes(x: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    """Index of the nearest mean of ``mixture`` for each point, ``(N,)``."""
    return metrics.nearest_mode(torch.from_numpy(x), mixture).cpu().numpy()


def check_2d(*mixtures: GaussianMixture | None) -> None:
    for m in mixtures:
        if m is not None and m.dim != 2:
            raise ValueError(f"plots need 2-D mixtures, got a {m.dim}-D {m!r}")


def square(*clouds: np.ndarray, pad: float = 0.06, min_half: float = 1.0) -> tuple[tuple, tuple]:
    """Square ``(xlim, ylim)`` around all points of ``clouds`` (each ``(..., 2)``), with ``pad`` relative margin."""
    pts = np.concatenate([c.reshape(-1, 2) for c in clouds])
    lo, hi = pts.min(0), pts.max(0)
    center, half = (lo + hi) / 2, max((hi - lo).max() / 2 * (1 + 2 * pad), min_half)
    return (center[0] - half, center[0] + half), (center[1] - half, center[1] + half)


def contours(ax: Axes, mixture: GaussianMixture, xlim, ylim, color: str = "0.45", n: int = 160, **kw: Any) -> None:
    """Faint contours of ``log p`` at Mahalanobis radii 1, 2, 3 below its maximum on the grid."""
    X, Y = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))  # (n, n) each
    logp = mixture.log_prob(torch.from_numpy(np.stack([X, Y], -1))).detach().numpy()  # (n, n)
    levels = [logp.max() + d for d in _LEVELS]
    kw.setdefault("linestyles", "solid")  # one colour would otherwise dash the negative log-levels
    ax.contour(X, Y, logp, levels=levels, colors=color, linewidths=0.7, alpha=0.6, **kw)


def mean_array(mixture: GaussianMixture) -> np.ndarray:
    return mixture.means.detach().cpu().numpy()


def stars(ax: Axes, means: torch.Tensor) -> None:
    m = means.detach().cpu().numpy()
    ax.plot(m[:, 0], m[:, 1], "*", ms=15, mfc="gold", mec="black", mew=0.8, ls="none", zorder=5)


def legend(fig: Figure, source: GaussianMixture, target: GaussianMixture | None, extra: Sequence = ()) -> None:
    """One legend under the figure: a dot per source mode (the colour of its points), the target means, ``extra``."""
    source_means = mean_array(source)
    handles = [
        Line2D([], [], ls="none", marker="o", color=PALETTE[k], label=f"from source mode at ({m[0]:.1f}, {m[1]:.1f})")
        for k, m in enumerate(source_means)
    ]
    if target is not None:
        handles.append(Line2D([], [], ls="none", marker="*", ms=12, mfc="gold", mec="black", label="target means"))
    handles += list(extra)
    columns = max(1, int(fig.get_figwidth() // 2.6))  # about 2.6 inches per entry: nothing clipped in narrow figures
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), columns), frameon=False)


def axis_labels(ax: Axes, first: bool = True) -> None:
    ax.set_xlabel("$x_1$")
    if first:
        ax.set_ylabel("$x_2$")
