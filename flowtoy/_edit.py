"""``flowtoy.edit``: every editing method of the paper's toy experiment, on exact mixture flows.

All methods but ``"ot"`` run on :mod:`flowedit`'s shared integrator; only the velocities are the
closed-form ones of :class:`~flowtoy.GaussianMixture`. The editors after FlowEdit (FlowAlign, DVRF and
its DDS end, UniEdit-Flow) are the core's :func:`flowedit.flowalign`, :func:`flowedit.dvrf` and
:func:`flowedit.uniedit` on the same velocity pair; their ``x0hat = z - t v`` is the mixture's exact
:meth:`~flowtoy.GaussianMixture.denoise`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.polynomial.hermite_e import hermegauss

from flowedit import (
    PAPER_SOLVERS,
    Adaptive,
    check_generator,
    check_mask,
    dvrf,
    edit_by_inversion,
    flowalign,
    flowedit,
    integrate,
    linear_timesteps,
    make_solver,
    sdedit,
    uniedit,
    velocity_pair,
)

from ._checks import check_choice, check_int, check_points
from ._mixture import GaussianMixture, check_mixture
from ._settings import DEFAULT, Settings, check_setting, check_work

__all__ = ["MEAN_DRAWS", "METHODS", "SOLVERS", "Adaptive", "edit", "gauss_hermite", "round_trip"]

METHODS = ("flowedit", "flowedit-mean", "inversion", "sdedit", "ot", "flowalign", "dvrf", "dds", "uniedit")
SOLVERS = ("euler", "heun", "rk4", "exact", *PAPER_SOLVERS)
MAX_QUADRATURE = 200_000  # points of the tensor-product Gauss-Hermite rule of "flowedit-mean"
MEAN_DRAWS = 64  # Monte-Carlo draws per step of "flowedit-mean" where that rule would be larger
MAX_OT = 3000  # points of the exact assignment of "ot" (O(N^3))


def gauss_hermite(nodes: int, dim: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor-product Gauss-Hermite rule for ``E[f(eps)]``, ``eps ~ N(0, I_dim)``.

    Returns points ``(nodes**dim, dim)`` and weights ``(nodes**dim,)`` summing to 1; exact for
    polynomials of degree ``2 nodes - 1`` in each coordinate.
    """
    nodes, dim = check_setting("nodes", nodes), check_int(dim, "dim", 1)
    if nodes**dim > MAX_QUADRATURE:
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
    return integrate(x, mean_delta, ts[first:], method="euler", callback=shifted)


def _optimal_pairing(x: torch.Tensor, target: GaussianMixture, generator) -> torch.Tensor:
    """Fresh target samples, matched to ``x`` by the exact minimum of sum ||x_i - y_pi(i)||^2."""
    from scipy.optimize import linear_sum_assignment

    if len(x) > MAX_OT:
        raise ValueError(f"method 'ot' solves an exact {len(x)}x{len(x)} assignment (O(N^3)); use N <= {MAX_OT}")
    y = target.sample(len(x), generator).to(x)
    rows, cols = linear_sum_assignment(torch.cdist(x, y).square().cpu().numpy())
    return y[torch.from_numpy(cols[np.argsort(rows)])]


def edit(
    x_src: Any,
    source: GaussianMixture,
    target: GaussianMixture,
    method: str = "flowedit",
    *,
    steps: int = DEFAULT.steps,
    n_max: int | None = DEFAULT.n_max,
    n_min: int = DEFAULT.n_min,
    n_avg: int = DEFAULT.n_avg,
    nodes: int = DEFAULT.nodes,
    solver: str = "euler",
    generator: torch.Generator | None = None,
    callback: Callable[[dict], None] | None = None,
    mask: Any = None,
    zeta: float = DEFAULT.zeta,
    guidance: float = DEFAULT.guidance,
    eta: float = DEFAULT.eta,
    omega: float = DEFAULT.omega,
    pixels: bool = False,
) -> torch.Tensor:
    """Edit points ``x_src`` (N, d) of ``source`` towards ``target`` with one of the paper's methods.

    ``x_src`` may be a tensor, a numpy array or a nested list; integer points become float64 (the
    mixtures' dtype). ``mask`` (FlowEdit methods only; values in [0, 1], shape ``(N,)`` per point or
    broadcastable to ``(N, d)``) scales each step's update: points with mask 0 stay exactly where
    they are, points with mask 1 get the plain edit (see :func:`flowedit.flowedit`).

    Methods (``T = steps`` on the uniform grid from t = 1 to 0; ``n_max`` unset means ``T``):

    - ``"flowedit"``: Algorithm S1 (``n_max``, ``n_min``, ``n_avg``, ``generator``).
    - ``"flowedit-mean"``: the ``n_avg -> infinity`` limit, the expectation over the noise taken by
      a Gauss-Hermite rule with ``nodes`` points per dimension (deterministic) where it has at most
      200,000 points (``nodes ** d``: 2-D points, not 64-D digits); beyond that a Monte-Carlo mean
      over ``MEAN_DRAWS = 64`` draws per step (FlowEdit with ``n_avg = 64``, from ``generator``),
      whose error in each step's mean velocity difference is 1/8 of one draw's standard deviation.
    - ``"inversion"``: source ODE up to ``t = n_max / T``, target ODE back down, with ``solver``
      ``"euler"``/``"heun"``/``"rk4"`` on the grid or ``"exact"`` (one adaptive DOP853 solve of each
      direction, tolerance 1e-10: :class:`flowedit.Adaptive`).
    - ``"sdedit"``: noise to ``t = n_max / T`` and sample the target (``solver`` on the grid).
    - ``"ot"``: the exact optimal pairing of ``x_src`` with as many fresh target samples (a lower
      bound on the transport cost of any method that reaches the target distribution).

    The editors after FlowEdit (each one change to FlowEdit's update; see :mod:`flowedit`):

    - ``"flowalign"``: :func:`flowedit.flowalign` (``zeta``; ``guidance`` ``w`` makes the target
      velocity ``v_src + w (v_tar - v_src)``, the source as negative, one more source evaluation).
    - ``"dvrf"``: :func:`flowedit.dvrf` with the official progressive shift ``c_t = eta (i / T) t``;
      ``"dds"`` is its other end, ``c_t = 0``.
    - ``"uniedit"``: :func:`flowedit.uniedit`, Uni-Inv with the source velocity to ``t = n_max / T``
      (the paper's ``alpha``) and back with strength ``omega``. Its soft mask is a min-max over the
      positions of a sample: with ``pixels=True`` each coordinate is a pixel of a one-channel image
      (the digits: 64 positions); otherwise a point is ONE position with ``d`` channels, the mask is 0
      (as the official code gives for one position) and the step is ``dt (omega (v_tar - v_src) + v_src)``.

    ``solver`` (``"inversion"`` and ``"sdedit"``) may also be one of the inversion papers' solvers:
    ``"midpoint"``, ``"rf-solver"`` (:class:`flowedit.RFSolver`, equal to midpoint up to rounding),
    ``"fireflow"`` (:class:`flowedit.FireFlow`) or ``"uni-inv"`` (:class:`flowedit.UniInv`).

    The counts are bounded as the command line's are (:class:`flowtoy.Settings`: e.g. ``steps`` at
    most 10,000, ``n_avg`` at most 1,000); numpy and torch integers are counts too.

    Returns the edited points, a float tensor of ``x_src``'s shape.
    """
    source, target = check_mixture(source, "source"), check_mixture(target, "target")
    if source.dim != target.dim:
        raise ValueError(f"source is {source.dim}-D but target is {target.dim}-D; both must have the same dimension")
    x = check_points(x_src, "x_src", source.dim, source.means.dtype)
    method = check_choice(method, "method", METHODS)
    solver = check_choice(solver, "solver", SOLVERS)
    s = Settings(
        steps=steps,
        n_max=n_max,
        n_min=n_min,
        n_avg=n_avg,
        nodes=nodes,
        zeta=zeta,
        guidance=guidance,
        eta=eta,
        omega=omega,
    )
    steps, n_max, n_min, n_avg, nodes = s.steps, s.edit_steps, s.n_min, s.n_avg, s.nodes
    if not isinstance(pixels, bool):
        raise TypeError(f"pixels must be True or False, got {type(pixels).__name__}")
    check_generator(generator)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function of the step's dict or None, got {type(callback).__name__}")
    if method != "flowedit" and (n_min != 0 or n_avg != 1):
        raise ValueError(f"n_min and n_avg apply to method 'flowedit' only, not {method!r}")
    check_work(steps, n_avg, x.shape[0], x.shape[1])
    ts = linear_timesteps(steps, dtype=x.dtype)
    if mask is not None:
        if method not in ("flowedit", "flowedit-mean"):
            raise ValueError(f"mask applies to methods 'flowedit' and 'flowedit-mean' only, not {method!r}")
        mask = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask)
        mask = check_mask(mask[:, None] if mask.ndim == 1 else mask, x)  # (N,) -> one value per point
    ode = Adaptive() if solver == "exact" else make_solver(solver)
    options = {"n_max": n_max, "generator": generator, "callback": callback}

    if method == "flowedit":
        pair = velocity_pair(source.velocity, target.velocity)
        return flowedit(x, pair, ts, n_min=n_min, n_avg=n_avg, mask=mask, **options)
    if method == "flowedit-mean":
        if nodes ** x.shape[-1] <= MAX_QUADRATURE:
            return _mean_flowedit(x, source, target, ts, n_max, nodes, callback, mask)
        # Too many dimensions for a tensor-product rule: a Monte-Carlo mean, i.e. FlowEdit with
        # n_avg = MEAN_DRAWS, whose error in each step's mean is 1/8 of a single draw's spread.
        pair = velocity_pair(source.velocity, target.velocity)
        return flowedit(x, pair, ts, n_avg=MEAN_DRAWS, mask=mask, **options)
    if method == "inversion":
        return edit_by_inversion(x, source.velocity, target.velocity, ts, n_max=n_max, method=ode, callback=callback)
    if method == "sdedit":
        return sdedit(x, target.velocity, ts, method=ode, **options)
    if method == "flowalign":
        return flowalign(x, _guided_pair(source, target, s.guidance), ts, zeta=s.zeta, **options)
    if method in ("dvrf", "dds"):
        return dvrf(
            x, velocity_pair(source.velocity, target.velocity), ts, eta=s.eta if method == "dvrf" else 0.0, **options
        )
    if method == "uniedit":
        pair = velocity_pair(source.velocity, target.velocity)
        channels = None if pixels else 1
        return uniedit(
            x, source.velocity, pair, ts, n_max=n_max, omega=s.omega, channel_dim=channels, callback=callback
        )
    return _optimal_pairing(x, target, generator)


def _guided_pair(source: GaussianMixture, target: GaussianMixture, w: float):
    """FlowAlign's pair: ``(v_src(z_src), v_src(z_tar) + w (v_tar(z_tar) - v_src(z_tar)))``; ``w = 1``: the plain pair."""
    if w == 1:
        return velocity_pair(source.velocity, target.velocity)

    def pair(z_src: torch.Tensor | None, z_tar: torch.Tensor, t: float):
        negative = source.velocity(z_tar, t)
        guided = negative + w * (target.velocity(z_tar, t) - negative)
        return (None if z_src is None else source.velocity(z_src, t)), guided

    return pair


def round_trip(x_src: Any, source: GaussianMixture, target: GaussianMixture, method: str = "flowedit", **options):
    """Edit ``x_src`` from ``source`` to ``target``, then the result back: ``(y, x_back)``, each of ``x_src``'s shape.

    Both edits take the same ``options`` of :func:`edit` (one ``generator`` feeds both, in turn); how far
    ``x_back`` lands from ``x_src`` measures a method's reversibility (FlowAlign's claim).
    """
    y = edit(x_src, source, target, method, **options)
    return y, edit(y, target, source, method, **options)
