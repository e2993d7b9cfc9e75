"""The ODE integrator shared by every sampler, edit and inversion in this project.

A velocity is a callable ``velocity(z, t) -> v`` with ``v`` of ``z``'s shape, where
``v(z, t) = E[eps - x0 | z_t = z]`` and ``t`` is a Python float (the sigma, 0 = data, 1 = noise).
The ODE ``dz/dt = v(z, t)`` carries the marginal at ``t`` to the marginal at any other ``t``;
integrating it down a grid samples, integrating it up inverts.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ._grid import check_grid

__all__ = ["CALLBACK_KEYS", "RK4", "SOLVERS", "Adaptive", "Euler", "Heun", "Solver", "Velocity", "integrate"]

Velocity = Callable[[torch.Tensor, float], torch.Tensor]
Callback = Callable[[dict[str, Any]], None]

# Every method calls its callback after each step with one dict of these keys (as k-diffusion's samplers do):
# ``i`` indexes the grid ``ts`` the caller passed (the step runs from ``t = ts[i]`` to ``t_next = ts[i + 1]``),
# ``z`` is the state at ``t_next``; ``z_src`` and ``z_tar`` are FlowEdit's noisy source and target points of the
# step (``(n_avg, *z.shape)``; None elsewhere); ``phase`` names the part of the method the step belongs to:
# "integrate" (plain :func:`integrate`), "edit" (FlowEdit), "invert" (inversion up), "sample" (down to t = 0).
CALLBACK_KEYS = ("i", "t", "t_next", "z", "z_src", "z_tar", "phase")


def step_info(i: int, t: float, t_next: float, z: torch.Tensor, phase: str, z_src=None, z_tar=None) -> dict:
    """The callback dict of one step (keys :data:`CALLBACK_KEYS`)."""
    return {"i": i, "t": t, "t_next": t_next, "z": z, "z_src": z_src, "z_tar": z_tar, "phase": phase}


def check_velocity_output(v: Any, z: torch.Tensor, name: str = "velocity") -> torch.Tensor:
    """Raise a clear error unless ``v`` is a tensor of ``z``'s shape."""
    if not torch.is_tensor(v):
        raise TypeError(f"{name} must return a torch.Tensor, got {type(v).__name__}")
    if v.shape != z.shape:
        raise ValueError(
            f"{name} returned shape {tuple(v.shape)} for an input of shape {tuple(z.shape)}; they must match"
        )
    return v


_DEFER_ON_CPU = False  # tests set this to exercise the accelerator path (one check per edit) on CPU


class FiniteWatch:
    """Raise ``FloatingPointError`` naming the first step whose velocity had NaN or inf, with one sync per edit.

    On CPU a check costs nothing, so :meth:`check` raises at once and the loop stops at the bad
    step. On an accelerator (or on CPU with ``_DEFER_ON_CPU``) it only keeps the device-side flag
    ``isfinite(v).all()`` of each evaluation; :meth:`finish`, called once at the end of an edit,
    moves all flags to the host together (the edit's one sync) and raises for the first bad one.
    """

    def __init__(self):
        self._flags: list[torch.Tensor] = []
        self._where: list[tuple[str, int, float]] = []

    def check(self, v: Any, like: torch.Tensor, name: str, i: int, t: float) -> torch.Tensor:
        """Return ``v``, the output of ``name`` for ``like`` at step ``i`` (index into ``ts``) and time ``t``.

        Its type and shape are checked at once (:func:`check_velocity_output`), its values as above.
        """
        v = check_velocity_output(v, like, name)
        finite = torch.isfinite(v).all()
        if v.device.type != "cpu" or _DEFER_ON_CPU:
            self._flags.append(finite)
            self._where.append((name, i, t))
        elif not finite:
            raise _non_finite(name, i, t)
        return v

    def finish(self) -> None:
        """Raise for the first deferred evaluation that was not finite (one device-to-host copy)."""
        flags, where = self._flags, self._where
        self._flags, self._where = [], []
        if not flags:
            return
        bad = (~torch.stack([f.to(flags[0].device) for f in flags]).cpu()).nonzero()
        if bad.numel():
            raise _non_finite(*where[bad[0, 0].item()])


def _non_finite(name: str, i: int, t: float) -> FloatingPointError:
    return FloatingPointError(f"{name} returned NaN or inf at step {i} (t = {t:.4g})")


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


class Adaptive:
    """An adaptive solver of a whole span: scipy's DOP853 (Hairer's 8th-order Runge-Kutta with step control).

    Unlike a :class:`Solver`, which takes one step per grid interval, it integrates ``dz/dt = v(z, t)``
    from ``ts[0]`` to ``ts[-1]`` in one call (as torchdiffeq's scipy wrapper does), choosing its own
    steps to meet the relative and absolute tolerances ``rtol``/``atol`` on the flattened state; the
    grid's points are only where the state is reported (dense output). The velocity is evaluated in
    float64 whatever the state's dtype; the result has the state's dtype and device. Needs scipy.
    """

    order = 8

    def __init__(self, rtol: float = 1e-10, atol: float = 1e-10):
        if not (rtol > 0 and atol > 0):
            raise ValueError(f"rtol and atol must be positive, got rtol={rtol!r}, atol={atol!r}")
        self.rtol, self.atol = rtol, atol

    def __repr__(self) -> str:
        return f"Adaptive(rtol={self.rtol:g}, atol={self.atol:g})"

    def solve(
        self, velocity: Velocity, z: torch.Tensor, times: list[float], *, every_point: bool = True
    ) -> list[torch.Tensor]:
        """The states at ``times[1:]``, shape of ``z`` each, from ``z`` at ``times[0]`` (monotone floats).

        With ``every_point=False`` only the state at ``times[-1]`` (a one-element list): no dense
        output is built, which saves DOP853's three extra evaluations per step.
        """
        try:
            from scipy.integrate import solve_ivp
        except ImportError as err:  # pragma: no cover - scipy comes with the toy's dependencies
            raise ImportError("the adaptive solver needs scipy: pip install scipy") from err
        shape, like = z.shape, z

        def rhs(time: float, flat):  # numpy in, numpy out
            state = torch.from_numpy(flat).reshape(shape).to(like.device)
            return velocity(state, float(time)).reshape(-1).detach().double().cpu().numpy()

        flat = z.detach().reshape(-1).double().cpu().numpy()
        span = (times[0], times[-1])
        t_eval = times[1:] if every_point else None
        sol = solve_ivp(rhs, span, flat, method="DOP853", t_eval=t_eval, rtol=self.rtol, atol=self.atol)
        if not sol.success:
            raise RuntimeError(f"adaptive ODE solve from t={span[0]} to t={span[1]} failed: {sol.message}")
        columns = range(len(times) - 1) if every_point else [-1]
        return [torch.from_numpy(sol.y[:, j].copy()).reshape(shape).to(like) for j in columns]


def get_solver(method: str | Solver | Adaptive) -> Solver | Adaptive:
    if isinstance(method, Solver | Adaptive):
        return method
    try:
        return SOLVERS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown method {method!r}; choose one of {sorted(SOLVERS)}, a Solver or an Adaptive solver"
        ) from None


def integrate(
    z: torch.Tensor,
    velocity: Velocity,
    ts: torch.Tensor,
    *,
    method: str | Solver | Adaptive = "euler",
    callback: Callback | None = None,
) -> torch.Tensor:
    """Solve ``dz/dt = velocity(z, t)`` from ``ts[0]`` to ``ts[-1]``, one step per grid interval.

    Args:
        z: state at ``ts[0]``, any shape and floating dtype.
        velocity: ``velocity(z, t) -> v``, ``v`` of ``z``'s shape, ``t`` a Python float.
        ts: strictly monotone 1-D grid in ``[0, 1]``; decreasing samples, increasing inverts.
        method: ``"euler"`` (order 1), ``"heun"`` (order 2), ``"rk4"`` (order 4), a :class:`Solver`
            instance (one step per interval), or an :class:`Adaptive` solver (one adaptive solve of the
            whole span, reporting the state at every grid point).
        callback: called after every step with the dict of :data:`CALLBACK_KEYS` (``z`` at ``t_next``,
            ``t = ts[i]``, ``phase`` ``"integrate"``).

    Returns:
        The state at ``ts[-1]``, shape of ``z``.

    Raises:
        FloatingPointError: if a velocity value is NaN or inf, naming the step ``i`` and the time
            ``t`` it was evaluated at (``ts[i]``, or up to ``ts[i + 1]`` for the later stages of
            Heun and RK4). On CPU the solve stops at that step; on an accelerator every step's check
            stays on the device and all are read once at the end (one sync per solve), so the
            error comes after the last step and names the first bad one.
    """
    solver = get_solver(method)
    times = check_grid(ts).tolist()
    watch = FiniteWatch()
    z = integrate_steps(z, velocity, times, solver, callback, watch)
    watch.finish()
    return z


def integrate_steps(
    z: torch.Tensor,
    velocity: Velocity,
    times: list[float],
    solver: Solver | Adaptive,
    callback: Callback | None,
    watch: FiniteWatch,
    name: str = "velocity",
    indices: range | None = None,
    phase: str = "integrate",
) -> torch.Tensor:
    """:func:`integrate` on a checked grid, reporting to ``watch``; step ``j`` is called ``indices[j]``.

    ``indices`` (default ``range(len(times) - 1)``) maps each step to the index of its start time
    in the caller's grid, so that callbacks and errors index the ``ts`` the user passed. An
    :class:`Adaptive` solver solves the span at once; its callbacks come after the solve, one per
    grid interval, and an evaluation at time ``t`` is charged to the interval that holds ``t``.
    """
    indices = range(len(times) - 1) if indices is None else indices
    if isinstance(solver, Adaptive):
        up = times[-1] > times[0]
        keys = times[:-1] if up else [-t for t in times[:-1]]  # increasing, for bisect

        def located(x: torch.Tensor, t: float) -> torch.Tensor:
            j = max(bisect.bisect_right(keys, t if up else -t) - 1, 0)
            return watch.check(velocity(x, t), x, name, indices[j], t)

        states = solver.solve(located, z, times, every_point=callback is not None)
        if callback is not None:
            for j, (i, t, t_next) in enumerate(zip(indices, times[:-1], times[1:], strict=True)):
                callback(step_info(i, t, t_next, states[j], phase))
        return states[-1]

    def checked(x: torch.Tensor, t: float) -> torch.Tensor:
        return watch.check(velocity(x, t), x, name, i, t)  # i: the step the loop below is on

    for i, t, t_next in zip(indices, times[:-1], times[1:], strict=True):
        z = solver.step(checked, z, t, t_next)
        if callback is not None:
            callback(step_info(i, t, t_next, z, phase))
    return z
