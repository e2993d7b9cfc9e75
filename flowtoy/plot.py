"""Figures of the 2-D toy: the paper's Fig. 3, trajectories, velocity fields, regime maps, animations.

Every function takes point sets as torch tensors or numpy arrays of shape ``(N, 2)`` (or
``(S, N, 2)`` for paths), draws with matplotlib's object-oriented API and returns the
:class:`~matplotlib.figure.Figure` (``animate`` returns the path of the GIF it wrote). Points are
coloured by their SOURCE mode, the index of the nearest source mean, with :func:`mode_colors`, so
a target mode reached by points of both colours shows intermixing at a glance. Nothing here calls
``plt.show()``; close the figures you no longer need with ``plt.close(fig)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import metrics
from ._animate import animate
from ._digit_plots import digit_grid, tradeoff_curve
from ._mixture import GaussianMixture
from ._plot_base import (
    DOT,
    Points,
    as_array,
    axis_labels,
    check_2d,
    contours,
    legend,
    mean_array,
    mode_colors,
    nearest_modes,
    square,
    stars,
)
from ._settings import DEFAULT, check_setting
from .sweep import Sweep

__all__ = [
    "animate",
    "digit_grid",
    "figure3",
    "mode_colors",
    "regime_maps",
    "tradeoff_curve",
    "trajectories",
    "velocity_field",
]


def figure3(
    x: Points,
    noise: Points,
    y_inversion: Points,
    y_flowedit: Points,
    source: GaussianMixture,
    target: GaussianMixture,
    *,
    pairs: int = 0,
    seed: int = 0,
    steps: int | None = None,
    n_max: int | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """The four panels of FlowEdit's Fig. 3 (Kulikov et al., 2025) in one row.

    ``steps`` (T) and ``n_max`` (default T) describe how the edits were made (uniform Euler grid;
    inversion up to ``t = n_max / T`` and back down, FlowEdit over the last ``n_max`` steps), and go
    into the default titles: the step count decides whether Euler inversion intermixes the modes.

    (1) the source points ``x`` with the source density's contours and the target means (stars);
    (2) ``noise``, where the inversion ODE ``dz/dt = v_src`` carries ``x`` at ``t = 1``, over the
    contours of ``N(0, I)`` (own limits); (3) ``y_inversion`` and (4) ``y_flowedit`` over the
    target density's contours. Every point is coloured by the source mode of its ``x_i``, and
    panels 3-4 state the crossing fraction (:func:`flowtoy.metrics.crossing_fraction`). Panels
    1, 3, 4 share square limits. With ``pairs > 0``, that many pairs ``x_i -> y_i`` drawn with
    ``numpy.random.default_rng(seed)`` are joined by thin grey lines in panels 3 and 4.
    All point sets have shape ``(N, 2)`` with the same ``N``.
    """
    check_2d(source, target)
    names = ("x", "noise", "y_inversion", "y_flowedit")
    x, noise, y_inv, y_fe = (as_array(p, n) for p, n in zip((x, noise, y_inversion, y_flowedit), names, strict=True))
    if not x.shape == noise.shape == y_inv.shape == y_fe.shape:
        shapes = ", ".join(f"{n} {p.shape}" for n, p in zip(names, (x, noise, y_inv, y_fe), strict=True))
        raise ValueError(f"x, noise, y_inversion and y_flowedit must all have shape (N, 2) with one N, got {shapes}")
    if titles is None:
        titles = _figure3_titles(steps, n_max)
    if len(titles) != 4:
        raise ValueError(f"titles must hold 4 strings, got {len(titles)}")
    pairs, seed = check_setting("pairs", pairs), check_setting("seed", seed)
    colors = mode_colors(nearest_modes(x, source))
    shown = np.random.default_rng(seed).choice(len(x), min(pairs, len(x)), replace=False)
    xlim, ylim = square(x, y_inv, y_fe, mean_array(target), mean_array(source))
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.9), layout="constrained")
    clouds = (x, noise, y_inv, y_fe)
    densities = (source, source.marginal(1.0), target, target)
    for j, (ax, pts, density, title) in enumerate(zip(axes, clouds, densities, titles, strict=True)):
        lims = square(noise, min_half=3.5) if j == 1 else (xlim, ylim)
        contours(ax, density, *lims, color="0.15", zorder=3)  # over the points, which hide the inner levels
        if j >= 2 and len(shown):
            segments = np.stack([x[shown], pts[shown]], axis=1)  # (pairs, 2 ends, 2)
            ax.add_collection(LineCollection(segments, colors="0.4", linewidths=0.5, alpha=0.7, zorder=1, gid="pairs"))
        ax.scatter(pts[:, 0], pts[:, 1], c=colors, zorder=2, gid="points", **DOT)
        if j != 1:
            stars(ax, target.means)
        if j >= 2:
            crossed = metrics.crossing_fraction(torch.from_numpy(x), torch.from_numpy(pts), source, target)
            ax.text(0.97, 0.03, f"crossed: {crossed:.1%}", transform=ax.transAxes, ha="right", va="bottom")
        ax.set(xlim=lims[0], ylim=lims[1], title=title, aspect="equal")
        axis_labels(ax, j == 0)
    extra = [Line2D([], [], color="0.15", lw=0.8, label="density contours (1, 2, 3 std)")]
    if len(shown):
        extra.append(Line2D([], [], color="0.4", lw=0.8, label="a pair $x_i \\to y_i$"))
    legend(fig, source, target, extra)
    return fig


def _figure3_titles(steps: int | None, n_max: int | None) -> tuple[str, str, str, str]:
    if steps is None:
        return ("source", "inverted noise (t = 1)", "edit by inversion", "FlowEdit")
    n_max = steps if n_max is None else n_max
    t_max = f"t = {n_max / steps:g}"
    return (
        "source",
        f"inverted noise ({t_max}, {n_max} Euler steps)",
        f"edit by inversion ({n_max} Euler steps up, {n_max} down)",
        f"FlowEdit ({n_max} of {steps} Euler steps)",
    )


def trajectories(
    paths: Mapping[str, Points], source: GaussianMixture, target: GaussianMixture, *, n_show: int = 40, seed: int = 0
) -> Figure:
    """One panel per method: the paths of ``n_show`` points (``numpy.random.default_rng(seed)``).

    ``paths[method]`` has shape ``(S, N, 2)``: positions at ``S`` successive times, the first
    being the source points. Each path is a polyline coloured by the source mode of its start,
    with a circle at the start and a cross at the end, over faint source (dashed) and target
    (solid) density contours and the target means (stars). All panels share square limits.
    """
    check_2d(source, target)
    if not paths:
        raise ValueError("paths is empty; pass {method: (S, N, 2) positions}")
    arrays = {name: as_array(p, f"paths[{name!r}]", ndim=3) for name, p in paths.items()}
    n_show, seed = check_setting("pairs", n_show, "n_show"), check_setting("seed", seed)
    rng = np.random.default_rng(seed)
    picks = {name: rng.choice(a.shape[1], min(n_show, a.shape[1]), replace=False) for name, a in arrays.items()}
    shown = [a[:, picks[name]] for name, a in arrays.items()]
    xlim, ylim = square(*shown, mean_array(target), mean_array(source))
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.6 * len(arrays), 5.0), layout="constrained", squeeze=False)
    for ax, name, path in zip(axes[0], arrays, shown, strict=True):
        colors = mode_colors(nearest_modes(path[0], source))
        contours(ax, source, xlim, ylim, linestyles="dashed")
        contours(ax, target, xlim, ylim)
        lines = path.transpose(1, 0, 2)  # (n_show, S, 2): one polyline per point
        ax.add_collection(LineCollection(lines, colors=colors, linewidths=0.9, alpha=0.8, gid="paths"))
        ax.scatter(path[0, :, 0], path[0, :, 1], c=colors, s=14, marker="o", edgecolors="none")
        ax.scatter(path[-1, :, 0], path[-1, :, 1], c=colors, s=22, marker="x", linewidths=1.2)
        stars(ax, target.means)
        ax.set(xlim=xlim, ylim=ylim, title=f"{name} ({path.shape[0]} positions)", aspect="equal")
        axis_labels(ax, ax is axes[0, 0])
    extra = [
        Line2D([], [], ls="none", marker="o", color="0.3", label="start"),
        Line2D([], [], ls="none", marker="x", color="0.3", label="end"),
        Line2D([], [], color="0.45", ls="--", lw=0.8, label="source density"),
        Line2D([], [], color="0.45", lw=0.8, label="target density"),
    ]
    legend(fig, source, target, extra)
    return fig


def velocity_field(
    mixture: GaussianMixture,
    t: float,
    *,
    extent: tuple[float, float, float, float] | None = None,
    grid: int = DEFAULT.grid,
    ax: Axes | None = None,
) -> Figure:
    """The marginal density ``p_t`` (filled contours) and the velocity ``v(z, t)`` (arrows) of ``mixture``.

    ``p_t`` is the law of ``z_t = (1 - t) x0 + t eps``: components ``N((1 - t) mu_k, (1 - t)^2 S_k + t^2 I)``.
    Arrows show ``v(z, t) = E[eps - x0 | z_t = z]`` on a ``grid x grid`` lattice, i.e. the direction
    of increasing ``t`` (inversion); sampling moves against them. ``extent = (xmin, xmax, ymin,
    ymax)`` defaults to a square around the marginal means ``(1 - t) mu_k`` padded by 4 of the
    largest marginal standard deviations. Draws into ``ax`` when given and returns its figure.
    """
    check_2d(mixture)
    grid = check_setting("grid", grid)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must lie in [0, 1] (0 = data, 1 = noise), got {t!r}")
    marginal = mixture.marginal(t)
    if extent is None:
        mu = mean_array(marginal)
        pad = 4 * float(marginal.lam.max().sqrt())
        (x0, x1), (y0, y1) = square(mu - pad, mu + pad, pad=0.0)
    else:
        x0, x1, y0, y1 = extent
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.2), layout="constrained")
    fig = ax.figure
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))  # (200, 200)
    density = marginal.log_prob(torch.from_numpy(np.stack([X, Y], -1))).exp().detach().numpy()
    filled = ax.contourf(X, Y, density, levels=12, cmap="Blues")
    fig.colorbar(filled, ax=ax, shrink=0.85, label=r"$p_t(z)$")
    U, V = np.meshgrid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))  # (grid, grid)
    v = mixture.velocity(torch.from_numpy(np.stack([U, V], -1)), t).detach().numpy()  # (grid, grid, 2)
    ax.quiver(U, V, v[..., 0], v[..., 1], angles="xy", color="0.15", alpha=0.75, width=0.0025)
    ax.set(
        xlim=(x0, x1),
        ylim=(y0, y1),
        aspect="equal",
        xlabel="$z_1$",
        ylabel="$z_2$",
        title=f"$p_t$ (colour) and $v(z, t)$ (arrows, towards noise) at t = {t:g}",
    )
    ax.title.set_fontsize(9)
    return fig


def _heatmap(ax: Axes, values: np.ndarray, vmin: float, vmax: float, cmap: str, fmt: str):
    """``imshow`` of ``values`` (rows x columns) with each cell's value written in a readable colour."""
    image = ax.imshow(values, origin="lower", vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    rgba = image.cmap(image.norm(values))  # (rows, cols, 4)
    luminance = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
    for (i, j), value in np.ndenumerate(values):
        color = "black" if luminance[i, j] > 0.5 else "white"
        ax.text(j, i, format(value, fmt), ha="center", va="center", color=color, fontsize=9)
    return image


_SWEEP_TITLES = {"inversion": "inversion (Euler, T up + T down)", "flowedit": "FlowEdit (Euler, T steps)"}


def regime_maps(sweep: Sweep) -> Figure:
    """Heatmaps of a :class:`~flowtoy.sweep.Sweep`: one column per method, columns = steps, rows = weights.

    Row 1: the crossing fraction (share of points sent to a target mode other than their source
    mode's nearest) on a fixed scale ``[0, 1]``. Row 2: the transport cost ``mean ||y - x||^2`` on
    one scale shared by all methods. Every cell is annotated; one colour bar per row.
    """
    methods = sweep.methods
    if not methods:
        raise ValueError("the sweep holds no methods")
    costs = np.stack([sweep.cost[m] for m in methods])  # (M, rows, cols)
    fig, axes = plt.subplots(
        2, len(methods), figsize=(3.4 * len(methods) + 1.6, 6.4), layout="constrained", squeeze=False
    )
    rows = (
        ("crossing fraction", sweep.crossing, 0.0, 1.0, "viridis", ".2f"),
        (r"transport cost $E\,\|y - x\|^2$", sweep.cost, float(costs.min()), float(costs.max()), "cividis", ".0f"),
    )
    for r, (label, values, vmin, vmax, cmap, fmt) in enumerate(rows):
        for c, method in enumerate(methods):
            ax = axes[r, c]
            image = _heatmap(ax, np.asarray(values[method]), vmin, vmax, cmap, fmt)
            ax.set_xticks(range(len(sweep.steps)), [str(s) for s in sweep.steps])
            ax.set_yticks(range(len(sweep.weights)), [f"{w:g}" for w in sweep.weights])
            ax.set_title(_SWEEP_TITLES.get(method, method) if r == 0 else "")
            if r == 1:
                ax.set_xlabel("steps T")
            if c == 0:
                ax.set_ylabel("weight of lower-left\nsource mode")
        fig.colorbar(image, ax=axes[r, :], label=label, shrink=0.9)
    fig.suptitle(
        f"N = {sweep.n} points per cell, mode std {sweep.std:g}, uniform Euler grid of T steps; "
        "target modes equally weighted"
    )
    return fig
