"""Figures of real-digit edits: a grid of source images and their edits, and the trade-off curve over n_max."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ._settings import check_setting

__all__ = ["digit_grid", "tradeoff_curve"]

_SIDE = 8


def _strip(images: torch.Tensor, gap: int = 1) -> np.ndarray:
    """Images (n, 64) side by side as one (8, 9 n - 1) array, with ``gap`` columns of NaN between them."""
    tiles = images.reshape(-1, _SIDE, _SIDE).numpy()
    out = np.full((_SIDE, len(tiles) * (_SIDE + gap) - gap), np.nan)
    for j, tile in enumerate(tiles):
        out[:, j * (_SIDE + gap) : j * (_SIDE + gap) + _SIDE] = tile
    return out


def digit_grid(
    x: torch.Tensor, rows: Sequence, source: int, target: int, *, columns: int = 8, title: str = ""
) -> Figure:
    """Held-out source digits (top row) and their edits by each method (one row each).

    ``rows`` are :class:`flowtoy.digits.Row` objects; each row's label gives the method and its means
    over all edited images: the classifier's probability of the target class and the transport cost.
    Pixels are shown on one fixed grey scale, [-1, 1] (black to white); the same column is the same
    source image in every row.
    """
    columns = min(check_setting("n", columns, "columns"), len(x))
    fig, axes = plt.subplots(1 + len(rows), 1, figsize=(0.72 * columns + 2.6, 0.78 * (1 + len(rows)) + 0.5))
    images = [x] + [r.images for r in rows]
    labels = [f"source: {source}s"] + [
        f"{r.method}\nP({target}) {r.target_probability:.2f}, cost {r.cost:.1f}" for r in rows
    ]
    grey = plt.get_cmap("gray").with_extremes(bad="white")
    for ax, stack, label in zip(axes, images, labels, strict=True):
        ax.imshow(_strip(stack[:columns]), cmap=grey, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title or f"real 8x8 digits, {source} -> {target}: each row one method", fontsize=10)
    fig.subplots_adjust(left=0.3, hspace=0.1)
    return fig


def tradeoff_curve(result, *, title: str = "") -> Figure:
    """How strongly each method edits against how far it moves the images, as ``n_max`` grows.

    ``result`` is a :class:`flowtoy.digits.Tradeoff`. Left: the classifier's target-class
    probability against the transport cost (the paper's CLIP score against LPIPS), one marker per
    ``n_max`` (labelled); a curve further up and to the left edits as strongly for less change.
    Right: the target-class probability against ``n_max``.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    markers = dict(zip(result.probability, "osD^v", strict=False))
    for method in result.probability:
        cost, prob = result.cost[method], result.probability[method]
        left.plot(cost, prob, marker=markers[method], label=method)
        right.plot(result.n_max, prob, marker=markers[method], label=method)
        for k, c, p in zip(result.n_max, cost, prob, strict=True):
            left.annotate(str(k), (c, p), textcoords="offset points", xytext=(4, -10), fontsize=7)
    left.set_xlabel("transport cost E|y - x|^2 (sum over 64 pixels)")
    right.set_xlabel(f"n_max (editing steps of T = {result.steps})")
    for ax in (left, right):
        ax.set_ylabel("P(target class) by the classifier")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    left.legend(title=f"method (T = {result.steps}); labels: n_max", fontsize=8, title_fontsize=8)
    fig.suptitle(
        title or f"edit strength vs change over n_max: mean of {len(result.pairs)} class pairs of real digits",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
