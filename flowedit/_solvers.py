"""Solvers from the inversion papers after FlowEdit: RF-Solver, FireFlow and Uni-Inv.

Each is a :class:`~flowedit.Solver` (one step per grid interval), so :func:`flowedit.integrate` and
:func:`flowedit.edit_by_inversion` run them like Euler or RK4, e.g.
``edit_by_inversion(x, v_src, v_tar, ts, method=FireFlow())``. With ``h = t_next - t``:

- RF-Solver (Wang et al., ICML 2025, arXiv 2411.04746): a second-order Taylor step whose time
  derivative of the velocity is a finite difference over half a step. Two evaluations per step.
  Algebraically ``h v + (h^2 / 2) (v_mid - v) / (h / 2) = h v_mid``: it IS the explicit midpoint
  method, written so that rounding differs (the tests check both agree to rounding).
- FireFlow (Deng et al., ICML 2025, arXiv 2412.07517): the midpoint method whose first stage reuses
  the previous step's midpoint velocity instead of evaluating ``v(z, t)``. One evaluation per step
  (two on the first): second order at the cost of Euler.
- Uni-Inv (UniEdit-Flow, Jiao et al., ICLR 2026, arXiv 2504.13109; the official
  ``UniInvEulerScheduler``): a predictor ``z + h v_prev`` with the previous step's velocity, then
  ``z + h v(predictor, t_next)``, a one-iteration approximation of the implicit (backward) Euler step
  that exactly undoes an Euler sampling step. One evaluation per step (two on the first); first order.

FireFlow and Uni-Inv carry one velocity from a step to the next. A carried velocity is used only
when the step continues the previous one: the same velocity callable, the very tensor the previous
step returned, and ``t`` equal to its ``t_next`` (so every :func:`~flowedit.integrate` call, whose
checked velocity is a fresh callable, starts afresh). The carry holds weak references to the
callable and the state, and the carried velocity tensor itself.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

import torch

from ._integrate import Adaptive, Solver, Velocity, get_solver

__all__ = ["PAPER_SOLVERS", "FireFlow", "Midpoint", "RFSolver", "UniInv", "make_solver"]


class Midpoint(Solver):
    """The explicit midpoint method: ``z + h v(z + (h/2) v(z, t), t + h/2)``. Two evaluations per step."""

    order, evaluations = 2, 2

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        return z + h * velocity(z + 0.5 * h * velocity(z, t), t + 0.5 * h)


class RFSolver(Solver):
    """RF-Solver-2 (arXiv 2411.04746, its sampling loop): ``z + h v + (h^2/2) dv``, ``dv = (v_mid - v) / (h/2)``.

    ``v = v(z, t)``, ``v_mid = v(z + (h/2) v, t + h/2)``. Equal to :class:`Midpoint` up to rounding.
    Two evaluations per step; order 2.
    """

    order, evaluations = 2, 2

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        v = velocity(z, t)
        v_mid = velocity(z + 0.5 * h * v, t + 0.5 * h)
        derivative = (v_mid - v) / (0.5 * h)
        return z + h * v + 0.5 * h * h * derivative


class _Carry(Solver):
    """A solver that reuses the last velocity of the previous step of the same solve (see the module doc)."""

    evaluations: ClassVar[int] = 1  # per step, plus one on the first step of a solve

    def __init__(self):
        self._carry: tuple[weakref.ref, weakref.ref, float, torch.Tensor] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _previous(self, velocity: Velocity, z: torch.Tensor, t: float) -> torch.Tensor:
        """The carried velocity if this step continues the previous one, else ``velocity(z, t)``."""
        carry, self._carry = self._carry, None
        if carry is not None:
            owner, state, t_end, v = carry
            if owner() is velocity and state() is z and t_end == t:
                return v
        return velocity(z, t)

    def _keep(self, velocity: Velocity, z_next: torch.Tensor, t_next: float, v: torch.Tensor) -> torch.Tensor:
        self._carry = (weakref.ref(velocity), weakref.ref(z_next), t_next, v)
        return z_next


class FireFlow(_Carry):
    """FireFlow (arXiv 2412.07517): ``v_mid = v(z + (h/2) v_prev, t + h/2)``, ``z + h v_mid``; ``v_prev <- v_mid``.

    ``v_prev`` is the previous step's midpoint velocity (``v(z, t)`` on the first step). One
    evaluation per step (two on the first); order 2.
    """

    order = 2

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        v = self._previous(velocity, z, t)
        v_mid = velocity(z + 0.5 * h * v, t + 0.5 * h)
        return self._keep(velocity, z + h * v_mid, t_next, v_mid)


class UniInv(_Carry):
    """Uni-Inv (arXiv 2504.13109, ``UniInvEulerScheduler``): ``v_end = v(z + h v_prev, t_next)``, ``z + h v_end``.

    ``v_prev`` is the previous step's ``v_end`` (``v(z, t)`` on the first step). Used up a grid it
    inverts Euler sampling far better than Euler inversion (it approximates the implicit step that
    Euler sampling would exactly undo). One evaluation per step (two on the first); order 1.
    """

    order = 1

    def step(self, velocity, z, t, t_next):
        h = t_next - t
        v = self._previous(velocity, z, t)
        v_end = velocity(z + h * v, t_next)
        return self._keep(velocity, z + h * v_end, t_next, v_end)


PAPER_SOLVERS: dict[str, type[Solver]] = {
    "midpoint": Midpoint,
    "rf-solver": RFSolver,
    "fireflow": FireFlow,
    "uni-inv": UniInv,
}


def make_solver(method: str | Solver | Adaptive) -> Solver | Adaptive:
    """The solver ``method`` names: one of :data:`PAPER_SOLVERS` as a fresh instance (FireFlow and Uni-Inv carry a
    velocity from step to step), else what :func:`~flowedit._integrate.get_solver` gives (``"euler"``, ``"heun"``,
    ``"rk4"``, or a solver object as it is)."""
    if isinstance(method, str) and method in PAPER_SOLVERS:
        return PAPER_SOLVERS[method]()
    return get_solver(method)
