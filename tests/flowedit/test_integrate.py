"""The integrator against exact solutions: single-Gaussian flow maps and each method's order."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import arrays, floats, rotations

from flowedit import SOLVERS, Adaptive, FireFlow, Midpoint, RFSolver, UniInv, check_grid, integrate, linear_timesteps
from flowtoy import GaussianMixture


class SingleGaussian:
    """N(mu, U diag(lam) U^T): the flow maps N(a mu, Sigma(t)) affinely, coordinate by coordinate.

    In the eigenbasis ``w = U^T z`` each coordinate has ``z_t ~ N(a m, s(t))``, ``s = a^2 lam + t^2``,
    and the ODE solution from ``t`` to ``t'`` is ``w' = a' m + sqrt(s(t') / s(t)) (w - a m)``.
    """

    def __init__(self, mu, lam, U):
        self.mu, self.lam, self.U = (torch.as_tensor(x, dtype=torch.float64) for x in (mu, lam, U))
        covs = self.U @ torch.diag(self.lam) @ self.U.T
        self.mixture = GaussianMixture(self.mu[None], covs[None])

    def flow(self, z, t, t_next):
        m = self.U.T @ self.mu
        s = lambda tau: (1 - tau) ** 2 * self.lam + tau**2  # noqa: E731
        w = z @ self.U
        w_next = (1 - t_next) * m + torch.sqrt(s(t_next) / s(t)) * (w - (1 - t) * m)
        return w_next @ self.U.T


@st.composite
def gaussians(draw, d=2, variances=(0.25, 4.0)):
    return SingleGaussian(draw(arrays((d,), -3, 3)), draw(arrays((d,), *variances)), draw(rotations(d)))


@given(gaussians(), arrays((4, 2), -3, 3), floats(0.0, 1.0), floats(0.0, 1.0))
def test_flow_map_is_exact_solution(g, z, t0, t1):
    """The closed-form map is the ODE's solution: RK4 with many steps reproduces it, either direction."""
    if abs(t1 - t0) < 1e-3:
        return
    z = torch.from_numpy(z)
    ts = torch.linspace(t0, t1, 101, dtype=torch.float64)
    torch.testing.assert_close(integrate(z, g.mixture.velocity, ts, method="rk4"), g.flow(z, t0, t1), rtol=0, atol=1e-8)


def measured_order(method, velocity, z, exact, t0, t1, counts):
    """Slope of log(RMS error) against log(number of steps) on uniform grids from t0 to t1."""
    grids = [torch.linspace(t0, t1, n + 1, dtype=torch.float64) for n in counts]
    errors = [(integrate(z, velocity, ts, method=method) - exact).square().mean().sqrt().item() for ts in grids]
    return -np.polyfit(np.log(counts), np.log(errors), 1)[0], errors


# Every fixed-grid solver: the built-in ones by name, and the inversion papers' solvers (flowedit._solvers).
ALL_SOLVERS = {**SOLVERS, "midpoint": Midpoint(), "rf-solver": RFSolver(), "fireflow": FireFlow(), "uni-inv": UniInv()}


def counts_for(order):
    return [16, 32, 64, 128] if order < 4 else [32, 64, 128, 256]


@pytest.mark.parametrize("method", sorted(ALL_SOLVERS))
def test_measured_order_equals_declared_order_on_a_nonlinear_problem(method):
    """dz/dt = 1 + z^2 has the solution z(t) = tan(t + c): every method shows exactly its order."""
    z0 = torch.linspace(-0.3, 0.6, 5, dtype=torch.float64)
    exact = torch.tan(torch.atan(z0) + (0.1 - 0.9))
    order = ALL_SOLVERS[method].order
    slope, errors = measured_order(ALL_SOLVERS[method], lambda z, t: 1 + z * z, z0, exact, 0.9, 0.1, counts_for(order))
    assert abs(slope - order) < 0.3, (errors, slope)


@pytest.mark.parametrize("method", sorted(ALL_SOLVERS))
@settings(max_examples=8, derandomize=True)
@given(g=gaussians(variances=(1.0, 4.0)))
def test_measured_order_on_single_gaussian_flows(method, g):
    """On single-Gaussian flows each method converges at its declared order (checked as a lower bound).

    In the eigenbasis the ODE is ``u' = (s'/2s) u`` with ``s = (1-t)^2 lam + t^2`` quadratic in ``t``.
    Its error constants partly cancel: over 150 random Gaussians (variances 1 to 4) the measured
    slopes ranged 0.99 (Euler), 2.03-2.19 (Heun) and 3.46-5.09 (RK4, whose h^4 and h^5 terms can
    have opposite signs at these step sizes), so the order is checked as ``slope > order - 0.6``;
    the exact order is checked on the nonlinear problem above. Small variances move the
    asymptotic regime to smaller steps still. Derandomised: the same Gaussians in every profile.
    """
    z = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    order = ALL_SOLVERS[method].order
    slope, errors = measured_order(
        ALL_SOLVERS[method], g.mixture.velocity, z, g.flow(z, 0.9, 0.1), 0.9, 0.1, [16, 32, 64, 128]
    )
    assert slope > order - 0.6, (errors, slope)


def test_round_trip_inversion_returns_to_the_data():
    g = GaussianMixture([[-2.0, 0.0], [2.0, 1.0]], [0.5, 1.5], [0.3, 0.7])
    x = g.sample(50, torch.Generator().manual_seed(0))
    ts = linear_timesteps(200)
    noise = integrate(x, g.velocity, ts.flip(0), method="rk4")
    torch.testing.assert_close(integrate(noise, g.velocity, ts, method="rk4"), x, rtol=0, atol=1e-7)


def test_callback_sees_every_step_in_order():
    seen = []
    ts = linear_timesteps(5)
    z = integrate(torch.zeros(3, 2, dtype=torch.float64), lambda z, t: torch.ones_like(z), ts, callback=seen.append)
    assert [info["i"] for info in seen] == list(range(5))
    assert [info["t"] for info in seen] == ts[:-1].tolist()
    assert torch.equal(seen[-1]["z"], z)
    torch.testing.assert_close(z, -torch.ones(3, 2, dtype=torch.float64))  # dz/dt = 1 from t=1 to 0


def test_errors_name_the_problem():
    z = torch.zeros(3, 2)
    good = lambda z, t: z  # noqa: E731
    with pytest.raises(ValueError, match="unknown method 'rk5'.*euler"):
        integrate(z, good, linear_timesteps(3), method="rk5")
    with pytest.raises(ValueError, match="strictly monotone"):
        integrate(z, good, torch.tensor([1.0, 0.5, 0.7, 0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        integrate(z, good, torch.tensor([1.5, 0.0]))
    with pytest.raises(ValueError, match="at least 2"):
        integrate(z, good, torch.tensor([1.0]))
    with pytest.raises(ValueError, match=r"returned shape \(3,\) for an input of shape \(3, 2\)"):
        integrate(z, lambda z, t: z[:, 0], linear_timesteps(3))


def test_a_long_bad_grid_gets_a_short_message():
    ts = torch.linspace(1, 0, 1_000_001, dtype=torch.float64)
    ts[700_000] = ts[699_999]
    with pytest.raises(ValueError, match=r"ts\[699999\] = 0\.300001, ts\[700000\] = 0\.300001$") as info:
        check_grid(ts)
    assert len(str(info.value)) < 200
    ts[5] = float("nan")
    with pytest.raises(ValueError, match=r"^ts contains NaN or inf: ts\[5\] = nan$"):
        check_grid(ts)


def test_the_adaptive_solver_integrates_the_whole_span_and_reports_every_grid_point():
    """One DOP853 solve of the span (not one per interval), exact to its tolerance at every grid point."""
    g = SingleGaussian([1.0, -2.0], [0.5, 3.0], np.eye(2))
    z = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ts, calls, seen = torch.tensor([0.9, 0.6, 0.3, 0.05], dtype=torch.float64), [], []

    def velocity(x, t):
        calls.append(t)
        return g.mixture.velocity(x, t)

    y = integrate(z, velocity, ts, method=Adaptive(rtol=1e-11, atol=1e-11), callback=seen.append)
    assert [info["i"] for info in seen] == [0, 1, 2] and [info["t"] for info in seen] == ts[:-1].tolist()
    for info in seen:
        torch.testing.assert_close(info["z"], g.flow(z, 0.9, info["t_next"]), rtol=0, atol=1e-8)
    assert torch.equal(seen[-1]["z"], y)
    # its own steps, across the grid's points: evaluations at times that are not grid points
    assert len(calls) > 12 and not set(calls) <= set(ts.tolist())
    with pytest.raises(ValueError, match="rtol and atol must be positive"):
        Adaptive(rtol=0)


def test_the_adaptive_solver_names_a_non_finite_velocity_with_the_grid_step_it_falls_in():
    bad = lambda z, t: z / 0 if t < 0.5 else z  # noqa: E731
    with pytest.raises(FloatingPointError, match=r"^velocity returned NaN or inf at step 1 \(t = 0\.4"):
        integrate(torch.ones(2, 2, dtype=torch.float64), bad, torch.tensor([1.0, 0.5, 0.0]), method=Adaptive())
