"""``flowtoy.edit``: every editing method of the paper's toy experiment, on exact mixture flows.

All methods but ``"ot"`` run on :mod:`flowedit`'s shared integrator; only the velocities are the
closed-form ones of :class:`~flowtoy.GaussianMixture`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss

from flowedit import Solver, edit_by_inversion, flowedit, integrate, linear_timesteps, sdedit, velocity_pair
from flowedit._edit import check_mask, check_schedule

from ._mixture import GaussianMixture

__all__ = ["MEAN_DRAWS", "METHODS", "SOLVERS", "Adaptive", "edit", "gauss_hermite"]

METHODS = ("flowedit", "flowedit-mean", "inversion", "sdedit", "ot")
SOLVERS = ("euler", "heun", "rk4", "exact")
MAX_QUADRATURE = 200_000  # points of the tensor-product Gauss-Hermite rule of "flowedit-mean"
MEAN_DRAWS = 64  # Monte-Carlo draws per step of "flowedit-mean" where that rule would be larger


class Adaptive(Solver):
    """An adaptive 8th-order Runge-Kutta solve of each interval (scipy's DOP853), as "exact" ODE reference.

    ``step`` integrates ``dz/dt = v(z, t)`` from ``t`` to ``t_next`` with relative and absolute
    tolerances ``rtol``/``atol`` on the flattened state; use it on a two-point grid for one
    accurate solve of a whole path.
    """

    order, evaluations = 8, 12

    def __init__(self, rtol: float = 1e-10, atol: float = 1e-10):
        self.rtol, self.atol = rtol, atol

    def step(self, velocity, z, t, t_next):
        from scipy.integrate import solve_ivp

        shape, like = z.shape, z

        def rhs(time: float, flat: np.ndarray) -> np.ndarray:  # evaluated in float64 whatever z's dtype
            state = torch.from_numpy(flat).reshape(shape).to(like.device)
            return velocity(state, float(time)).reshape(-1).detach().double().cpu().numpy()

        flat = z.detach().reshape(-1).double().cpu().numpy()
        sol = solve_ivp(rhs, (t, t_next), flat, method="DOP853", rtol=self.rtol, atol=self.atol)
        if not sol.success:
            raise RuntimeError(f"adaptive ODE solve from t={t} to t={t_next} failed: {sol.message}")
        return torch.from_numpy(sol.y[:, -1].copy()).reshape(shape).to(like)


def gauss_hermite(nodes: int, dim: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor-product Gauss-Hermite rule for ``E[f(eps)]``, ``eps ~ N(0, I_dim)``.

    Returns points ``(nodes**dim, dim)`` and weights ``(nodes**dim,)`` summing to 1; exact for
    polynomials of degree ``2 nodes - 1`` in each coordinate.
    """
    if nodes < 1 or nodes**dim > MAX_QUADRATURE:
        raise ValueError(
            f"nodes={nodes} in {dim} dimensions gives {nodes**dim} points; use 1 <= nodes**dim <= {MAX_QUADRATURE}"
        )
    x, w = hermegauss(nodes)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    weights = np.prod(np.meshgrid(*([w] * dim), indexing="ij"), axis=0)
    points = np.stack([g.reshape(-1) for g in grids], axis=-1)
    return torch.from_numpy(points).to(dtype), torch.from_numpy(weights.reshape(-1)).to(dtype)


def _mean_flowedit(x, source, target, ts, n_max, nodes, callback, mask=None):
    """FlowEdit with n_avg -> infinity: Euler on dz/dt = m * E_eps[v_tar(z_src + z - x) - v_src(z_src)]."""
    eps, w = gauss_hermite(nodes, x.shape[-1], x.dtype)  # (Q, d), (Q,)

    def mean_delta(z: torch.Tensor, t: float) -> torch.Tensor:
        z_src = (1 - t) * x + t * eps[:, None, :]  # (Q, N, d)
        z_tar = z_src + (z - x)
        delta = target.velocity(z_tar, t) - source.velocity(z_src, t)
        mean = torch.einsum("q,qnd->nd", w, delta)
        return mean if mask is None else mask * mean

    steps = len(ts) - 1
    if n_max == 0:
        return x.clone()
    first = steps - n_max  # callbacks index the full grid ts, as every method's do
    shifted = None if callback is None else (lambda info: callback({**info, "i": info["i"] + first, "phase": "edit"}))
    return integrate(x, mean_delta, ts[first:], "euler", shifted)


def _optimal_pairing(x: torch.Tensor, target: GaussianMixture, generator) -> torch.Tensor:
    """Fresh target samples, matched to ``x`` by the exact minimum of sum ||x_i - y_pi(i)||^2."""
    from scipy.optimize import linear_sum_assignment

    if len(x) > 3000:
        raise ValueError(f"method 'ot' solves an exact {len(x)}x{len(x)} assignment (O(N^3)); use N <= 3000")
    y = target.sample(len(x), generator).to(x)
    rows, cols = linear_sum_assignment(torch.cdist(x, y).square().cpu().numpy())
    return y[torch.from_numpy(cols[np.argsort(rows)])]


def edit(
    x_src: Any,
    source: GaussianMixture,
    target: GaussianMixture,
    method: str = "flowedit",
    *,
    steps: int = 50,
    n_max: int | None = None,
    n_min: int = 0,
    n_avg: int = 1,
    nodes: int = 10,
    solver: str = "euler",
    generator: torch.Generator | None = None,
    callback=None,
    mask: Any = None,
) -> torch.Tensor:
    """Edit points ``x_src`` (N, d) of ``source`` towards ``target`` with one of the paper's methods.

    ``mask`` (FlowEdit methods only; values in [0, 1], shape ``(N,)`` per point or broadcastable to
    ``(N, d)``) scales each step's update: points with mask 0 stay exactly where they are, points
    with mask 1 get the plain edit (see :func:`flowedit.flowedit`).

    Methods (``T = steps`` on the uniform grid from t = 1 to 0; ``n_max`` defaults to ``T``):

    - ``"flowedit"``: Algorithm S1 (``n_max``, ``n_min``, ``n_avg``, ``generator``).
    - ``"flowedit-mean"``: the ``n_avg -> infinity`` limit, the expectation over the noise taken by
      a Gauss-Hermite rule with ``nodes`` points per dimension (deterministic) where it has at most
      200,000 points (``nodes ** d``: 2-D points, not 64-D digits); beyond that a Monte-Carlo mean
      over ``MEAN_DRAWS = 64`` draws per step (FlowEdit with ``n_avg = 64``, from ``generator``),
      whose error in each step's mean velocity difference is 1/8 of one draw's standard deviation.
    - ``"inversion"``: source ODE up to ``t = n_max / T``, target ODE back down, with ``solver``
      ``"euler"``/``"heun"``/``"rk4"`` on the grid or ``"exact"`` (adaptive DOP853, tolerance 1e-10).
    - ``"sdedit"``: noise to ``t = n_max / T`` and sample the target (``solver`` on the grid).
    - ``"ot"``: the exact optimal pairing of ``x_src`` with as many fresh target samples (a lower
      bound on the transport cost of any method that reaches the target distribution).

    Returns the edited points, a float tensor of ``x_src``'s shape.
    """
    x = x_src if torch.is_tensor(x_src) else torch.as_tensor(np.asarray(x_src))
    x = x if x.is_floating_point() else x.to(torch.float64)
    if source.dim != target.dim:
        raise ValueError(f"source is {source.dim}-D but target is {target.dim}-D; both must have the same dimension")
    if x.ndim != 2 or x.shape[1] != source.dim or x.shape[0] < 1:
        raise ValueError(f"x_src must have shape (N, {source.dim}) with N >= 1, got {tuple(x.shape)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    ts = linear_timesteps(steps, dtype=x.dtype)
    n_max = steps if n_max is None else n_max
    check_schedule(steps, n_max, n_min, n_avg)
    if method != "flowedit" and (n_min != 0 or n_avg != 1):
        raise ValueError(f"n_min and n_avg apply to method 'flowedit' only, not {method!r}")
    if mask is not None:
        if method not in ("flowedit", "flowedit-mean"):
            raise ValueError(f"mask applies to methods 'flowedit' and 'flowedit-mean' only, not {method!r}")
        mask = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask)
        mask = check_mask(mask[:, None] if mask.ndim == 1 else mask, x)  # (N,) -> one value per point
    ode = Adaptive() if solver == "exact" else solver

    if method == "flowedit":
        pair = velocity_pair(source.velocity, target.velocity)
        return flowedit(x, pair, ts, n_max, n_min, n_avg, generator, callback, mask)
    if method == "flowedit-mean":
        if nodes ** x.shape[-1] <= MAX_QUADRATURE:
            return _mean_flowedit(x, source, target, ts, n_max, nodes, callback, mask)
        # Too many dimensions for a tensor-product rule: a Monte-Carlo mean, i.e. FlowEdit with
        # n_avg = MEAN_DRAWS, whose error in each step's mean is 1/8 of a single draw's spread.
        pair = velocity_pair(source.velocity, target.velocity)
        return flowedit(x, pair, ts, n_max, 0, MEAN_DRAWS, generator, callback, mask)
    if method == "inversion":
        if solver == "exact":  # one adaptive solve per direction, from 0 up to t_max and back
            ts = torch.tensor([float(ts[steps - n_max]), 0.0], dtype=x.dtype) if n_max else ts
            n_max = 1 if n_max else 0
        return edit_by_inversion(x, source.velocity, target.velocity, ts, n_max, ode, callback)
    if method == "sdedit":
        return sdedit(x, target.velocity, ts, n_max, generator, ode, callback)
    return _optimal_pairing(x, target, generator)
