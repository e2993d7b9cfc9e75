"""The toy's animation: a GIF of points moving along their paths (:func:`flowtoy.plot.animate`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from flowedit._files import write_atomically

from ._mixture import GaussianMixture
from ._plot_base import PALETTE, Points, as_array, check_2d, mean_array, mode_colors, square, stars
from ._settings import DEFAULT, check_setting

__all__ = ["animate"]


def animate(
    frames: Points,
    times: Sequence[float],
    colors: Points | Sequence[int],
    out: str | os.PathLike,
    *,
    fps: int = DEFAULT.fps,
    source: GaussianMixture | None = None,
    target: GaussianMixture | None = None,
    title: str = "",
    phases: Sequence[str] | None = None,
) -> Path:
    """Write a GIF of points moving: frame ``f`` shows ``frames[f]`` (``(F, N, 2)``) at ``t = times[f]``.

    Each frame is titled ``title`` (e.g. the method, solver and steps), then ``phases[f]`` when given
    (e.g. "inversion up (source ODE)"), then ``t``.

    ``colors`` holds an integer mode label per point (``(N,)``, see :func:`mode_colors`). The axis
    limits are fixed and cover every frame; the source means (crosses) and target means (stars)
    are drawn when given. The GIF is written to a temporary file beside ``out`` and moved into
    place with ``os.replace``, so ``out`` is never left half-written; missing parent folders are
    created. Returns ``Path(out)``.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    check_2d(source, target)
    frames = as_array(frames, "frames", ndim=3)
    times = [float(t) for t in times]
    rgba = mode_colors(colors)
    if len(times) != len(frames) or len(rgba) != frames.shape[1]:
        raise ValueError(
            f"frames {frames.shape} needs {len(frames)} times and {frames.shape[1]} colors, "
            f"got {len(times)} and {len(rgba)}"
        )
    if phases is not None and len(phases) != len(frames):
        raise ValueError(f"frames {frames.shape} needs {len(frames)} phases, got {len(phases)}")
    fps = check_setting("fps", fps)
    out = Path(out)
    extra = [mean_array(m) for m in (source, target) if m is not None]
    xlim, ylim = square(frames, *extra)
    fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    marks = []
    if source is not None:
        m = mean_array(source)
        ax.plot(m[:, 0], m[:, 1], "P", ms=10, mfc="white", mec="black", ls="none", zorder=5, label="source means")
    if target is not None:
        stars(ax, target.means)
        marks.append(Line2D([], [], ls="none", marker="*", ms=12, mfc="gold", mec="black", label="target means"))
    dots = ax.scatter(frames[0, :, 0], frames[0, :, 1], c=rgba, s=5, linewidths=0)
    marks += [
        Line2D([], [], ls="none", marker="o", ms=4, color=PALETTE[k], label=f"points of source mode {k + 1}")
        for k in np.unique(np.asarray(colors.cpu() if torch.is_tensor(colors) else colors))
    ]
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + marks, loc="upper left", fontsize=7, framealpha=0.8)

    def draw(f: int):
        dots.set_offsets(frames[f])
        phase = f"{phases[f]}, " if phases is not None and phases[f] else ""
        ax.set_title(f"{title}\n{phase}t = {times[f]:.3f}" if title else f"{phase}t = {times[f]:.3f}", fontsize=9)
        return (dots,)

    animation = FuncAnimation(fig, draw, frames=len(frames), blit=False)
    try:
        write_atomically(out, lambda tmp: animation.save(tmp, writer=PillowWriter(fps=fps), dpi=100))
    finally:
        plt.close(fig)
    return out
