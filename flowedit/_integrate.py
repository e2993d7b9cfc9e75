"""The ODE integrator shared by every sampler, edit and inversion in this project.

A velocity is a callable ``velocity(z, t) -> v`` with ``v`` of ``z``'s shape, where
``v(z, t) = E[eps - x0 | z_t = z]`` and ``t`` is a Python float (the sigma, 0 = data, 1 = noise).
The ODE ``dz/dt = v(z, t)`` carries the marginal at ``t`` to the marginal at any other ``t``;
integrating it down a grid samples, integrating it up inverts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ._grid import check_grid

__all__ = ["Euler", "Heun", "RK4", "SOLVERS", "Velocity", "integrate"]

Velocity = Callable[[torch.Tensor, float], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]


def check_velocity_output(v: Any, z: torch.Tensor, name: str = "velocity") -> torch.Tensor:
    """Raise a clear error unless ``v`` is a tensor of ``z``'s shape."""
    if not torch.is_tensor(v):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(v).__name__}")
    if v.shape != z.shape:
        raise ValueError(
            f"{name} returned shape {tuple(v.shape)} for an input of shape {tuple(z.shape)}; they must match"
        )
    return v


class Solver:
    """One step of an explicit Runge-Kutta method from ``t`` to ``t_next``; ``order`` is its global order."""

    order: ClassVar[int]
    evaluations: ClassVar[int]

    def step(self, velocity: Velocity, z: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
        raise NotImplementedError


class Euler(Solver):
    """``z + h v(z, t)``, ``h = t_next - t``. The method FlowEdit and diffusers' flow schedulers use."""

    order, evaluations = 1, 1

    def step(self, velocity, z, t, t_next):
        return z + (t_next - t) * velocity(z, t)


class Heun(Solver):
    """Heun (explicit trapezoid): average of the slopes at ``t`` and at the Euler guess at ``t_next``."""

    order, evaluations = 2, 2

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        v0 = velocity(z, t)
        v1 = velocity(z + h * v0, t_next)
        return z + 0.5 * h * (v0 + v1)


class RK4(Solver):
    """Classical fourth-order Runge-Kutta."""

    order, evaluations = 4, 4

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        k1 = velocity(z, t)
        k2 = velocity(z + 0.5 * h * k1, t + 0.5 * h)
        k3 = velocity(z + 0.5 * h * k2, t + 0.5 * h)
        k4 = velocity(z + h * k3, t_next)
        return z + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


SOLVERS: dict[str, Solver] = {"euler": Euler(), "heun": Heun(), "rk4": RK4()}


def get_solver(method: str | Solver) -> Solver:
    if isinstance(method, Solver):
        return method
    try:
        return SOLVERS[method]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(SOLVERS)}") from None


def integrate(
    z: torch.Tensor,
    velocity: Velocity,
    ts: torch.Tensor,
    method: str | Solver = "euler",
    callback: Callback | None = None,
) -> torch.Tensor:
    """Solve ``dz/dt = velocity(z, t)`` from ``ts[0]`` to ``ts[-1]``, one step per grid interval.

    Args:
        z: state at ``ts[0]``, any shape and floating dtype.
        velocity: ``velocity(z, t) -> v``, ``v`` of ``z``'s shape, ``t`` a Python float.
        ts: strictly monotone 1-D grid in ``[0, 1]``; decreasing samples, increasing inverts.
        method: ``"euler"`` (order 1), ``"heun"`` (order 2), ``"rk4"`` (order 4),
            or a :class:`Solver` instance.
        callback: called after every step with ``{"i", "t", "t_next", "z"}`` (``z`` at ``t_next``).

    Returns:
        The state at ``ts[-1]``, shape of ``z``.
    """
    solver = get_solver(method)
    times = check_grid(ts).tolist()

    def checked(x: torch.Tensor, t: float) -> torch.Tensor:
        return check_velocity_output(velocity(x, t), x)

    for i, (t, t_next) in enumerate(zip(times[:-1], times[1:], strict=True)):
        z = solver.step(checked, z, t, t_next)
        if callback is not None:
            callback({"i": i, "t": t, "t_next": t_next, "z": z})
    return z
