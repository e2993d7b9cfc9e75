"""The training-free flow editors after FlowEdit, each one change to FlowEdit's update, on the same pair.

Every method here runs on :func:`flowedit.flowedit`'s conventions (``t`` is sigma, ``ts`` a
decreasing grid of ``T + 1`` points, step ``i`` from ``ts[i]`` to ``ts[i + 1]``, ``dt = t_{i+1} - t_i
< 0``) and on its velocity pair ``(z_src, z_tar, t) -> (v_src, v_tar)``: ONE pair call per step, so a
model evaluates every branch of a step in one batched forward. A denoised estimate never needs the
images: ``x0hat(y) = y - t v(y)`` is computed from the pair's own output. FlowEdit's step, for
reference (``eps`` fresh each step, the same in both branches)::

    z_src = (1 - t) x_src + t eps,   z_tar = z_src + (z - x_src),   z <- z + dt (v_tar(z_tar) - v_src(z_src))

Costs are counted in branch evaluations per step (a model family with classifier-free guidance
evaluates each guided branch twice, in the same batch).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._edit import VelocityPair, check_generator, check_mask, check_schedule, noise_like, pair_output
from ._grid import check_grid, describe
from ._integrate import Callback, FiniteWatch, Velocity, integrate_steps, step_info
from ._solvers import UniInv

__all__ = ["UNIEDIT_EPS", "dvrf", "flowalign", "uniedit", "uniedit_mask"]

UNIEDIT_EPS = 1e-7  # the official code's guard in the min-max mask: (g - min) / (max - min + 1e-7)


def _check_real(value: Any, name: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float if finite and within ``[low, high]``, else a one-line error naming it."""
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    x = float(value)
    if not math.isfinite(x) or (low is not None and x < low) or (high is not None and x > high):
        bounds = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return x


def _edit_steps(ts: torch.Tensor, n_max: int | None, n_avg: int = 1) -> tuple[list[float], int, int, int]:
    times = check_grid(ts, decreasing=True).tolist()
    steps = len(times) - 1
    n_max, _, n_avg = check_schedule(steps, steps if n_max is None else n_max, 0, n_avg)
    return times, steps, n_max, n_avg


def flowalign(
    x_src: torch.Tensor,
    velocity: VelocityPair,
    ts: torch.Tensor,
    *,
    zeta: float = 0.01,
    n_max: int | None = None,
    n_avg: int = 1,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """FlowAlign (Kim et al., ICLR 2026, arXiv 2505.23145; official ``SD3FlowAlign``): FlowEdit plus an x0hat pull.

    From step ``T - n_max`` (the first step by default, as the official code), with ``q`` and ``p``
    FlowEdit's ``z_src`` and ``z_tar``::

        q = (1 - t) x_src + t eps,   p = q + (z - x_src),
        z <- z + dt (v_tar(p) - v_src(q)) + zeta (x0hat_src(q) - x0hat_tar(p)),   x0hat(y) = y - t v(y).

    Velocity algebra makes the extra term plain: ``x0hat_src(q) - x0hat_tar(p) = t (v_tar(p) -
    v_src(q)) - (z - x_src)``, so FlowAlign is FlowEdit with the step ``dt + zeta t`` (shorter) and a
    pull ``-zeta (z - x_src)`` back to the source at every step. ``zeta = 0`` is FlowEdit with
    ``n_max``, ``n_min = 0``, ``n_avg`` bit for bit. The paper's target velocity is guided with the
    source prompt as its negative, ``v^w_tar(p) = v(p, c_src) + w (v(p, c_tar) - v(p, c_src))``
    (``w = 7.5`` in the official ``run_edit.py``), the source velocity unguided: that guidance
    belongs to the pair (a model pair evaluates ``[q | c_src, p | c_src, p | c_tar]`` in one batch,
    three prompt evaluations per step); this function only uses what the pair returns.

    Args:
        x_src: source sample, any shape; the edit has its shape and dtype.
        velocity: a velocity pair (see :func:`flowedit.velocity_pair`), called with ``(q, p, t)`` of
            shape ``(n_avg, *x_src.shape)``.
        ts: decreasing grid with ``T + 1`` points.
        zeta: weight of the x0hat term (``>= 0``; the official 0.01), applied once per step (not times ``dt``).
        n_max: steps that edit (default ``T``); n_avg: noise draws averaged per step.
        generator, callback, mask: as :func:`flowedit.flowedit` (the mask scales each step's whole update).

    Cost: one pair call per step (two branch evaluations; three prompt evaluations with the paper's guidance).
    """
    times, steps, n_max, n_avg = _edit_steps(ts, n_max, n_avg)
    zeta = _check_real(zeta, "zeta", 0.0)
    check_generator(generator)
    mask = None if mask is None else check_mask(mask, x_src)
    watch = FiniteWatch()
    z = x_src.clone()
    for i in range(steps - n_max, steps):
        t, t_next = times[i], times[i + 1]
        eps = torch.stack([noise_like(x_src, generator) for _ in range(n_avg)])  # (n_avg, *x.shape)
        q = (1 - t) * x_src + t * eps
        p = q + (z - x_src)
        v_src, v_tar = pair_output(velocity(q, p, t))
        watch.check(v_src, q, "velocity pair (source)", i, t)
        watch.check(v_tar, p, "velocity pair (target)", i, t)
        update = (t_next - t) * (v_tar - v_src).mean(dim=0)
        if zeta != 0:
            update = update + zeta * ((q - t * v_src) - (p - t * v_tar)).mean(dim=0)  # x0hat_src - x0hat_tar
        z = z + (update if mask is None else mask * update)
        if callback is not None:
            callback(step_info(i, t, t_next, z, "edit", q, p))
    watch.finish()
    return z


def dvrf(
    x_src: torch.Tensor,
    velocity: VelocityPair,
    ts: torch.Tensor,
    *,
    n_max: int,
    eta: float = 1.0,
    progressive: bool = True,
    n_avg: int = 1,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Delta-velocity editing with a shift ``c_t`` (DVRF, arXiv 2509.05342, as its official ``models/DVRF.py``).

    The target velocity is taken at the noisy current estimate shifted by ``c_t (z - x_src)``, and the
    update carries DVRF's correction (its Eq. 8 in the official code) ``(1 - c_t / t) (z - x_src)``::

        z_src = (1 - t) x_src + t eps,   z_tar = (1 - t) z + t eps + c_t (z - x_src) = z_src + (1 - t + c_t)(z - x_src),
        z <- z + dt [v_tar(z_tar) - v_src(z_src) + (1 - c_t / t)(z - x_src)],
        c_t = eta_i t,   eta_i = eta * i / T  (progressive, the official schedule)   or   eta_i = eta.

    ``c_t = t`` (``eta = 1``, ``progressive=False``) is FlowEdit bit for bit (the correction vanishes);
    ``c_t = 0`` (``eta = 0``) is the DDS end: the target at the noisy estimate itself, ``(1 - t) z + t eps``.
    With ``v = (y - x0hat(y)) / t`` every member takes the same step,
    ``z <- z + (dt / t) [(z - x_src) - (x0hat_tar(z_tar) - x0hat_src(z_src))]``: the family differs
    only in where the target is looked at. The official schedule is progressive: ``c_t`` grows from 0
    (DDS-like) at the first step to about ``t`` (FlowEdit) at the last.

    Departures from the official code, which this project could not check against the paper's text:
    the step is the grid's ``dt`` (so that ``c_t = t`` is FlowEdit) where the official code takes SGD
    steps with a beta-shaped learning-rate schedule (``lr_hump_tail_beta``), and ``i`` counts the steps
    of ``ts`` as the official loop counts its timesteps.

    Args:
        eta: the shift's scale in ``[0, 1]`` (official default 1.0); progressive: ``eta_i = eta i / T``
            (official) or a constant ``eta``. The other arguments are :func:`flowedit.flowedit`'s.

    Cost: one pair call per step (two branch evaluations), as FlowEdit.
    """
    times, steps, n_max, n_avg = _edit_steps(ts, n_max, n_avg)
    eta = _check_real(eta, "eta", 0.0, 1.0)
    check_generator(generator)
    mask = None if mask is None else check_mask(mask, x_src)
    watch = FiniteWatch()
    z = x_src.clone()
    for i in range(steps - n_max, steps):
        t, t_next = times[i], times[i + 1]
        shift = eta * i / steps if progressive else eta  # c_t / t
        eps = torch.stack([noise_like(x_src, generator) for _ in range(n_avg)])  # (n_avg, *x.shape)
        z_src = (1 - t) * x_src + t * eps
        z_tar = z_src + (z - x_src) if shift == 1 else z_src + (1 - (1 - shift) * t) * (z - x_src)
        v_src, v_tar = pair_output(velocity(z_src, z_tar, t))
        watch.check(v_src, z_src, "velocity pair (source)", i, t)
        watch.check(v_tar, z_tar, "velocity pair (target)", i, t)
        delta = (v_tar - v_src).mean(dim=0)
        if shift != 1:
            delta = delta + (1 - shift) * (z - x_src)
        z = z + (t_next - t) * (delta if mask is None else mask * delta)
        if callback is not None:
            callback(step_info(i, t, t_next, z, "edit", z_src, z_tar))
    watch.finish()
    return z


def uniedit_mask(delta: torch.Tensor, channel_dim: int | None = 1) -> torch.Tensor:
    """UniEdit-Flow's soft mask of ``delta = v_tar - v_src`` (shape ``(B, ...)``): values in [0, 1).

    The mean over ``channel_dim`` (kept as size 1; None: no channel axis), then a min-max over every
    other position of each sample ``b`` (dim 0): ``(g - min_b g) / (max_b g - min_b g + 1e-7)``, as the
    official ``UniEditEulerScheduler``. A sample with a single position gets the mask 0.
    """
    g = delta if channel_dim is None else delta.mean(dim=channel_dim, keepdim=True)
    flat = g.reshape(g.shape[0], -1)
    shape = (g.shape[0],) + (1,) * (g.ndim - 1)
    low, high = flat.min(dim=1).values.reshape(shape), flat.max(dim=1).values.reshape(shape)
    return (g - low) / (high - low + UNIEDIT_EPS)


def uniedit(
    x_src: torch.Tensor,
    invert: Velocity,
    velocity: VelocityPair,
    ts: torch.Tensor,
    *,
    n_max: int,
    omega: float = 5.0,
    channel_dim: int | None = 1,
    callback: Callback | None = None,
) -> torch.Tensor:
    """UniEdit-Flow (Jiao et al., ICLR 2026, arXiv 2504.13109; official ``UniEdit-Flow_diffusers/schedulers``).

    Invert ``x_src`` with Uni-Inv (:class:`~flowedit.UniInv`) and the velocity ``invert`` up the
    reversed grid ``ts[T - n_max:]`` (the paper's ``alpha = n_max / T``, official 0.6), then go down
    the same grid with both velocities at the SAME point ``z``::

        d = v_tar(z) - v_src(z),   m = uniedit_mask(d)   (channel mean, min-max over positions),
        z <- z + omega dt (1 + m) d + dt (m v_tar(z) + (1 - m) v_src(z)),     omega = 5 (official).

    ``m`` is an automatic soft mask, 1 where ``d`` is largest: signed, as in the official code (no absolute
    value), so with ``v = eps - x0`` it is 0 where the target wants more of a channel than the source. With
    equal velocities the edit is a Uni-Inv round trip (it returns close to ``x_src``, not exactly). The
    official demo inverts with the empty prompt at guidance 1 (``invert`` is the model's unconditional
    velocity there; a toy passes the source velocity) and evaluates the pair unguided.

    Args:
        x_src: source sample ``(B, ...)``; dim 0 indexes samples, each with its own mask.
        invert: the velocity ``v(z, t)`` that inverts (one evaluation per step, plus one).
        velocity: the pair, called with ``(z, z, t)`` of shape ``(1, *x_src.shape)``.
        n_max: steps inverted and edited (``alpha T``); omega: the strength ``>= 0``.
        channel_dim: the channel axis of ``x_src`` (SD3 latents 1, packed FLUX tokens 2, video 1);
            None when every entry is a position (one-channel images as flat rows).
        callback: phases ``"invert"`` then ``"edit"``, ``i`` indexing ``ts``.

    Cost: ``n_max + 1`` evaluations of ``invert``, then one pair call per step (two branch evaluations).
    """
    times, steps, n_max, _ = _edit_steps(ts, n_max)
    omega = _check_real(omega, "omega", 0.0)
    if channel_dim is not None and not -x_src.ndim <= channel_dim < x_src.ndim:
        raise ValueError(f"channel_dim = {channel_dim} is not a dimension of a sample of shape {tuple(x_src.shape)}")
    if n_max == 0:
        return x_src.clone()
    first = steps - n_max
    watch = FiniteWatch()
    up = times[first:][::-1]
    z = integrate_steps(
        x_src, invert, up, UniInv(), callback, watch, "source velocity", range(steps, first, -1), "invert"
    )
    for i in range(first, steps):
        t, t_next = times[i], times[i + 1]
        pair_in = z.unsqueeze(0)  # (1, *x.shape)
        v_src, v_tar = pair_output(velocity(pair_in, pair_in, t))
        v_src = watch.check(v_src, pair_in, "velocity pair (source)", i, t)[0]
        v_tar = watch.check(v_tar, pair_in, "velocity pair (target)", i, t)[0]
        delta = v_tar - v_src
        m = uniedit_mask(delta, channel_dim)
        dt = t_next - t
        z = z + omega * dt * (1 + m) * delta + dt * (m * v_tar + (1 - m) * v_src)
        if callback is not None:
            callback(step_info(i, t, t_next, z, "edit", pair_in, pair_in))
    watch.finish()
    return z
