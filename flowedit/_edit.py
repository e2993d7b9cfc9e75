"""FlowEdit (Kulikov et al., ICCV 2025, Algorithm S1) and the paper's two baselines.

All three run on :func:`flowedit.integrate`'s conventions: ``t`` is sigma (0 = data, 1 = noise),
``ts`` is a decreasing grid of ``T + 1`` points and step ``i`` goes from ``ts[i]`` to ``ts[i+1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._grid import check_count, check_grid, describe
from ._integrate import Adaptive, Callback, FiniteWatch, Solver, Velocity, get_solver, integrate_steps, step_info

__all__ = [
    "VelocityPair",
    "check_generator",
    "check_mask",
    "check_schedule",
    "edit_by_inversion",
    "flowedit",
    "sdedit",
    "velocity_pair",
]

VelocityPair = Callable[[torch.Tensor | None, torch.Tensor, float], tuple[torch.Tensor | None, torch.Tensor]]


def velocity_pair(source: Velocity, target: Velocity) -> VelocityPair:
    """Build a FlowEdit velocity pair from two plain velocities ``v(z, t)``.

    The pair maps ``(z_src, z_tar, t)`` to ``(source(z_src, t), target(z_tar, t))``; when
    ``z_src`` is ``None`` only the target is evaluated and ``(None, v_tar)`` is returned.
    Model adapters implement the same signature but evaluate both branches in one batched call.
    """

    def pair(z_src: torch.Tensor | None, z_tar: torch.Tensor, t: float):
        return (None if z_src is None else source(z_src, t)), target(z_tar, t)

    return pair


def check_schedule(steps: int, n_max: int, n_min: int = 0, n_avg: int = 1) -> tuple[int, int, int]:
    """Check ``0 <= n_min <= n_max <= steps`` and ``n_avg >= 1`` with errors that say which is wrong.

    Returns ``(n_max, n_min, n_avg)`` as Python ints (numpy and torch integers are accepted).
    """
    n_avg = check_count(n_avg, "n_avg", 1)
    n_min = check_count(n_min, "n_min", 0)
    n_max = check_count(n_max, "n_max", 0)
    if n_max > steps:
        raise ValueError(f"n_max = {n_max} exceeds the number of steps ({steps}); use n_max <= steps")
    if n_min > n_max:
        raise ValueError(f"n_min = {n_min} exceeds n_max = {n_max}; need 0 <= n_min <= n_max")
    return n_max, n_min, n_avg


def check_generator(generator: Any) -> torch.Generator | None:
    """``generator`` if it is a ``torch.Generator`` or None, else a one-line ``TypeError``."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {describe(generator)}; "
            "for a seed s pass torch.Generator().manual_seed(s)"
        )
    return generator


def pair_output(out: Any) -> tuple[Any, Any]:
    """The ``(v_src, v_tar)`` a velocity pair returned, or a ``TypeError`` naming what it returned instead."""
    if not isinstance(out, tuple | list) or len(out) != 2:
        raise TypeError(f"velocity pair must return a tuple (v_src, v_tar) of two tensors, got {describe(out)}")
    return out


def noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``randn_like(x)``: x's shape, dtype, device and memory format (the fill order of the draws)."""
    return torch.randn_like(x, generator=generator)


def flowedit(
    x_src: torch.Tensor,
    velocity: VelocityPair,
    ts: torch.Tensor,
    *,
    n_max: int,
    n_min: int = 0,
    n_avg: int = 1,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """FlowEdit, the full Algorithm S1 of Kulikov et al. (2025): an inversion-free ODE from source to target.

    With ``T = len(ts) - 1`` steps, the first ``T - n_max`` are skipped. Each step ``i`` in
    ``[T - n_max, T - n_min)`` draws ``n_avg`` noises ``eps_j ~ N(0, I)`` and forms

        z_src_j = (1 - t_i) x_src + t_i eps_j,      z_tar_j = z_src_j + (z_i - x_src),
        z_{i+1} = z_i + (t_{i+1} - t_i) * mean_j [v_tar(z_tar_j, t_i) - v_src(z_src_j, t_i)],

    starting from ``z = x_src`` (the SAME noise enters both branches). The last ``n_min`` steps
    are plain target sampling (Euler) from ``z_tar`` at ``t = ts[T - n_min]``, built with one
    more noise draw.

    A ``mask`` ``m`` (values in [0, 1], broadcastable to ``x_src``) makes the edit local: each step
    moves ``z`` by ``(t_{i+1} - t_i) * m * mean_j [...]``, so where ``m = 0`` the edit stays exactly
    at the source and where ``m = 1`` it is the plain edit, bit for bit; values in between scale the
    update. In the ``n_min`` phase, after each step ``z_tar`` is pulled back towards the source's own
    noisy path, ``z_tar <- lerp(s_{i+1}, z_tar, m)`` with ``s = (1 - t) x_src + t eps`` for the phase's
    draw ``eps`` (as inpainting pipelines do), which ends at ``x_src`` where ``m = 0``.

    Args:
        x_src: source sample, any shape; the edit has the same shape and dtype.
        velocity: a velocity pair ``(z_src, z_tar, t) -> (v_src, v_tar)`` (see :func:`velocity_pair`).
            ``z_src`` and ``z_tar`` have shape ``(n_avg, *x_src.shape)``: all draws go in one call.
        ts: decreasing grid in ``[0, 1]`` with ``T + 1`` points (usually from 1 to 0).
        n_max: number of steps that edit (``0 <= n_min <= n_max <= T``); ``T - n_max`` are skipped.
        n_min: number of final steps of plain target sampling.
        n_avg: noise draws averaged per step (``>= 1``).
        generator: source of all noise. Each draw is ``torch.randn_like(x_src, generator=generator)``
            (so it fills memory in ``x_src``'s layout, e.g. channels_last), one at a time in step
            order (the ``n_avg`` draws of a step in turn). A loop that seeds torch's default generator
            with the same seed and calls ``randn_like(x_src)`` in that order draws the same noise.
        callback: called after each step with the dict of :data:`~flowedit.CALLBACK_KEYS`; ``phase`` is
            ``"edit"`` or ``"sample"`` (the last ``n_min`` steps, where ``z_tar`` is ``(1, *x_src.shape)``).
        mask: where to edit (see above); None edits everywhere.

    Returns:
        The edited sample, shape of ``x_src``.

    Raises:
        FloatingPointError: if ``v_src`` or ``v_tar`` has a NaN or inf, naming the branch
            (``"velocity pair (source)"`` or ``"velocity pair (target)"``), the step ``i`` and ``t = ts[i]``.
            On CPU the edit stops at that step; on an accelerator the checks stay on the device and
            are read once at the end of the edit (its one sync), naming the first bad step.
    """
    times = check_grid(ts, decreasing=True).tolist()
    steps = len(times) - 1
    n_max, n_min, n_avg = check_schedule(steps, n_max, n_min, n_avg)
    check_generator(generator)
    mask = None if mask is None else check_mask(mask, x_src)
    first, switch = steps - n_max, steps - n_min
    watch = FiniteWatch()
    z = x_src.clone()
    for i in range(first, switch):
        t, t_next = times[i], times[i + 1]
        eps = torch.stack([noise_like(x_src, generator) for _ in range(n_avg)])  # (n_avg, *x.shape)
        z_src = (1 - t) * x_src + t * eps
        z_tar = z_src + (z - x_src)
        v_src, v_tar = pair_output(velocity(z_src, z_tar, t))
        watch.check(v_src, z_src, "velocity pair (source)", i, t)
        watch.check(v_tar, z_tar, "velocity pair (target)", i, t)
        delta = (v_tar - v_src).mean(dim=0)
        z = z + (t_next - t) * (delta if mask is None else mask * delta)
        if callback is not None:
            callback(step_info(i, t, t_next, z, "edit", z_src, z_tar))
    if n_min == 0:
        watch.finish()
        return z

    # The last n_min steps: plain target sampling (Euler) from the noisy target point at ts[T - n_min].
    t = times[switch]
    eps = noise_like(x_src, generator)  # one draw for the whole phase
    z_src = ((1 - t) * x_src + t * eps).unsqueeze(0)  # (1, *x.shape)
    z_tar = z_src + (z - x_src)

    def target(z: torch.Tensor, t: float) -> torch.Tensor:
        return pair_output(velocity(None, z, t))[1]

    def sampled(info: dict) -> None:
        callback({**info, "z": info["z"][0], "z_tar": info["z"]})

    report, euler = (None if callback is None else sampled), get_solver("euler")
    if mask is None:
        z_tar = integrate_steps(
            z_tar,
            target,
            times[switch:],
            euler,
            report,
            watch,
            "velocity pair (target)",
            range(switch, steps),
            "sample",
        )
    else:  # step by step: after each step, the unmasked part goes back to the source's noisy path
        for i in range(switch, steps):
            z_tar = integrate_steps(
                z_tar, target, times[i : i + 2], euler, None, watch, "velocity pair (target)", range(i, i + 1)
            )
            t_next = times[i + 1]
            z_tar = torch.lerp(((1 - t_next) * x_src + t_next * eps).unsqueeze(0), z_tar, mask)
            if report is not None:
                report(step_info(i, times[i], t_next, z_tar, "sample"))
    watch.finish()
    return z_tar[0]


def check_mask(mask: Any, like: torch.Tensor) -> torch.Tensor:
    """``mask`` as a tensor of ``like``'s dtype and device, or ``ValueError``: values in [0, 1], broadcastable to
    ``like`` (a mask of ``like``'s shape or, e.g., one value per pixel shared by the channels)."""
    if not torch.is_tensor(mask):
        raise ValueError(f"mask must be a tensor with values in [0, 1], got {type(mask).__name__}")
    try:
        shape = torch.broadcast_shapes(mask.shape, like.shape)
    except RuntimeError:
        shape = None
    if shape != like.shape:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the sample's {tuple(like.shape)}")
    mask = mask.to(device=like.device, dtype=like.dtype)
    if not bool(((mask >= 0) & (mask <= 1)).all()):  # also refuses NaN
        raise ValueError("mask values must lie in [0, 1] (0 keeps the source, 1 edits)")
    return mask


def edit_by_inversion(
    x_src: torch.Tensor,
    source: Velocity,
    target: Velocity,
    ts: torch.Tensor,
    *,
    n_max: int | None = None,
    method: str | Solver | Adaptive = "euler",
    callback: Callback | None = None,
) -> torch.Tensor:
    """Edit by inversion (the paper's baseline, Sec. 3): invert with the source ODE, sample with the target.

    With ``T = len(ts) - 1`` and ``t_max = ts[T - n_max]`` (``n_max = T`` by default, i.e. the full
    path to ``ts[0]``), ``x_src`` is carried up the reversed grid ``ts[T - n_max:]`` by
    ``dz/dt = v_src`` to ``z(t_max)``, then down the same grid by ``dz/dt = v_tar``. The callback
    gets :data:`~flowedit.CALLBACK_KEYS` with ``phase`` ``"invert"`` then ``"sample"``; ``i`` indexes
    ``ts`` (``t = ts[i]``), so it counts down while inverting. ``method`` is a fixed-grid solver
    (``"euler"``, ``"heun"``, ``"rk4"`` or a :class:`~flowedit.Solver`) or an :class:`~flowedit.Adaptive`
    solver, which solves each direction's whole span at once.

    Raises:
        FloatingPointError: if a velocity value is NaN or inf, naming ``"source velocity"`` or
            ``"target velocity"``, the step ``i`` and the time ``t`` (see :func:`integrate`). Both
            phases share one check: on an accelerator it is read once, at the end of the edit.
    """
    solver = get_solver(method)
    times = check_grid(ts, decreasing=True).tolist()
    steps = len(times) - 1
    n_max = check_schedule(steps, steps if n_max is None else n_max)[0]
    if n_max == 0:
        return x_src.clone()
    first = steps - n_max
    down = times[first:]

    watch = FiniteWatch()
    up_steps = range(steps, first, -1)  # the step from ts[i] up to ts[i - 1]
    noise = integrate_steps(x_src, source, down[::-1], solver, callback, watch, "source velocity", up_steps, "invert")
    z = integrate_steps(noise, target, down, solver, callback, watch, "target velocity", range(first, steps), "sample")
    watch.finish()
    return z


def sdedit(
    x_src: torch.Tensor,
    target: Velocity,
    ts: torch.Tensor,
    *,
    n_max: int,
    generator: torch.Generator | None = None,
    method: str | Solver | Adaptive = "euler",
    callback: Callback | None = None,
) -> torch.Tensor:
    """SDEdit (Meng et al., 2022) on a flow: noise ``x_src`` to ``t0 = ts[T - n_max]`` and sample the target.

    ``z(t0) = (1 - t0) x_src + t0 eps`` with one draw ``eps ~ N(0, I)`` from ``generator``, then
    ``dz/dt = v_tar`` down ``ts[T - n_max:]``. The callback gets :data:`~flowedit.CALLBACK_KEYS`
    (``phase`` ``"sample"``), ``i`` indexing ``ts``.

    Raises:
        FloatingPointError: if a velocity value is NaN or inf, naming ``"target velocity"``, the
            step ``i`` and the time ``t`` (see :func:`integrate`).
    """
    solver = get_solver(method)
    times = check_grid(ts, decreasing=True).tolist()
    steps = len(times) - 1
    n_max = check_schedule(steps, n_max)[0]
    check_generator(generator)
    if n_max == 0:
        return x_src.clone()
    first = steps - n_max
    t0 = times[first]
    z = (1 - t0) * x_src + t0 * noise_like(x_src, generator)
    watch = FiniteWatch()
    indices = range(first, steps)
    z = integrate_steps(z, target, times[first:], solver, callback, watch, "target velocity", indices, "sample")
    watch.finish()
    return z
