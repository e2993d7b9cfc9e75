"""Time grids for rectified-flow sampling, and their validation.

Convention (used everywhere in this project): ``t`` is the sigma of the paper and of diffusers,
``t = 0`` is data and ``t = 1`` is noise, ``z_t = (1 - t) x0 + t eps``. A sampling grid runs from
``t = 1`` (or lower) down to ``t = 0`` and has ``steps + 1`` points; step ``i`` goes from ``ts[i]``
to ``ts[i + 1]``.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch

__all__ = [
    "check_count",
    "check_grid",
    "describe",
    "flux_mu",
    "flux_timesteps",
    "linear_timesteps",
    "sd3_timesteps",
    "shift_timesteps",
]


def check_grid(ts: torch.Tensor, *, decreasing: bool | None = None, name: str = "ts") -> torch.Tensor:
    """Return ``ts`` as a 1-D tensor after checking that it is a usable time grid.

    A grid must be 1-D with at least two points, finite, inside ``[0, 1]`` and strictly monotone.
    ``decreasing=True`` (sampling, t: 1 -> 0) or ``False`` (inversion, t: 0 -> 1) also fixes the
    direction; ``None`` accepts either.
    """
    ts = torch.as_tensor(ts)
    if not ts.is_floating_point():
        ts = ts.to(torch.float64)
    if ts.ndim != 1 or ts.numel() < 2:
        raise ValueError(
            f"{name} must be a 1-D tensor with at least 2 time points, got shape {tuple(ts.shape)}; "
            "build one with flowedit.linear_timesteps(steps)"
        )
    if not torch.isfinite(ts).all():
        i = int((~torch.isfinite(ts)).nonzero()[0, 0])
        raise ValueError(f"{name} contains NaN or inf: {name}[{i}] = {ts[i].item()}")
    if ts.min() < 0 or ts.max() > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] (t = 0 is data, t = 1 is noise), "
            f"got values from {ts.min().item():g} to {ts.max().item():g}"
        )
    dt = ts[1:] - ts[:-1]
    down, up = bool((dt < 0).all()), bool((dt > 0).all())
    if not (down or up):
        # the first step whose direction differs from the first one's (or that does not move)
        i = int(((dt == 0) | (torch.sign(dt) != torch.sign(dt[0]))).nonzero()[0, 0])
        raise ValueError(
            f"{name} must be strictly monotone (no repeated or reversed points): "
            f"{name}[{i}] = {ts[i].item():g}, {name}[{i + 1}] = {ts[i + 1].item():g}"
        )
    if decreasing is True and not down:
        raise ValueError(f"{name} must decrease (sampling runs t: 1 -> 0), got {ts[0].item():g} -> {ts[-1].item():g}")
    if decreasing is False and not up:
        raise ValueError(f"{name} must increase (inversion runs t: 0 -> 1), got {ts[0].item():g} -> {ts[-1].item():g}")
    return ts


def check_count(value: Any, name: str, low: int = 0) -> int:
    """``value`` as a Python int if it is an integer ``>= low``, else a one-line ``ValueError`` naming ``name``.

    Python, numpy and 0-d torch integers are accepted (anything with ``__index__``); bools, floats
    (even ``10.0``) and strings are refused.
    """
    # bools index as 0 and 1, a one-element tensor as its value: neither is a count
    refused = isinstance(value, bool) or type(value).__name__ == "bool_"
    refused = refused or (torch.is_tensor(value) and (value.dtype == torch.bool or value.ndim > 0))
    try:
        count = None if refused else operator.index(value)
    except TypeError:
        count = None
    if count is None or count < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {describe(value)}")
    return count


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message: its repr if small, else its type and shape."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        dtype = getattr(value, "dtype", None)
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    text = repr(value)
    if not isinstance(value, int | float | str | type(None)):
        text = f"{text} ({type(value).__name__})"
    return text if len(text) <= 80 else text[:77] + "..."


def _check_steps(steps: int) -> int:
    return check_count(steps, "steps", 1)


def linear_timesteps(steps: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Uniform sampling grid ``ts[i] = 1 - i / steps``, shape ``(steps + 1,)``, from 1 to 0.

    This is also FLUX's base grid: ``linspace(1, 1/steps, steps)`` followed by 0.
    """
    return torch.linspace(1.0, 0.0, _check_steps(steps) + 1, dtype=dtype)


def shift_timesteps(ts: torch.Tensor, shift: float) -> torch.Tensor:
    """Static shift of a grid (SD3, Esser et al. 2024, eq. 23): ``t' = s t / (1 + (s - 1) t)``.

    ``s > 1`` spends more steps at high noise. Evaluated as ``s t / (s t + 1 - t)`` so that
    ``t = 0`` and ``t = 1`` are fixed points exactly.
    """
    if not shift > 0:
        raise ValueError(f"shift must be positive, got {shift!r}")
    ts = torch.as_tensor(ts, dtype=torch.float64) if not torch.is_tensor(ts) else ts
    return _moebius(ts, shift)


def _moebius(ts: torch.Tensor, scale: float) -> torch.Tensor:
    # s t / (s t + 1 - t): exact at both ends, no division by t.
    st = scale * ts
    return st / (st + (1 - ts))


def sd3_timesteps(
    steps: int, *, shift: float = 3.0, num_train_timesteps: int = 1000, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """The grid of Stable Diffusion 3's ``FlowMatchEulerDiscreteScheduler`` (static shift), plus 0.

    diffusers builds it as: ``t_min = shift_s(1 / N)`` (N = num_train_timesteps), then ``steps``
    points ``linspace(1, t_min, steps)``, each shifted again by ``shift_s``, then a final 0.
    Shape ``(steps + 1,)``.
    """
    _check_steps(steps)
    t_min = shift_timesteps(torch.tensor(1.0 / num_train_timesteps, dtype=torch.float64), shift)
    base = torch.linspace(1.0, float(t_min), steps, dtype=torch.float64)
    ts = torch.cat([shift_timesteps(base, shift), base.new_zeros(1)])
    return ts.to(dtype)


def flux_mu(
    image_seq_len: int,
    *,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """FLUX's resolution-dependent shift ``mu``: linear in the image token count.

    ``mu = base_shift + (max_shift - base_shift) (L - base_seq_len) / (max_seq_len - base_seq_len)``;
    a 1024x1024 image has ``L = (1024 / 16)**2 = 4096`` tokens and ``mu = 1.15``.
    """
    if image_seq_len < 1:
        raise ValueError(f"image_seq_len must be positive, got {image_seq_len}")
    slope = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return base_shift + slope * (image_seq_len - base_seq_len)


def flux_timesteps(steps: int, *, mu: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """FLUX's dynamically shifted grid: ``t' = e^mu / (e^mu + 1/t - 1)`` on :func:`linear_timesteps`.

    ``mu`` comes from :func:`flux_mu`. This is the static shift with ``s = e^mu``; ``t = 0`` and
    ``t = 1`` stay fixed. Shape ``(steps + 1,)``.
    """
    return _moebius(linear_timesteps(steps, dtype=torch.float64), math.exp(mu)).to(dtype)
