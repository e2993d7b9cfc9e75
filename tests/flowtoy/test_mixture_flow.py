"""The closed-form flow quantities of GaussianMixture agree with each other and with the path's PDE."""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import EPS32, EPS64, arrays, mixtures, points, scale_of, times

import flowtoy._kernels
import flowtoy._mixture
import flowtoy.paper

TOL = 1e6 * EPS64  # ~2e-10: rounding in float64, amplified by 1/variance and mode separations


def close(actual, expected, scale):
    torch.testing.assert_close(actual, expected, rtol=0, atol=TOL * scale)


@given(st.data(), mixtures(), times())
def test_velocity_equals_its_other_closed_forms(data, mixture, t):
    z = data.draw(points(mixture.dim))
    v = mixture.velocity(z, t)
    x0, eps = mixture.denoise(z, t), mixture.expected_noise(z, t)
    scale = scale_of(z, mixture.means) ** 2
    close(t * v, z - x0, scale)  # v = (z - E[x0|z]) / t
    close((1 - t) * v, eps - z, scale)  # v = (E[eps|z] - z) / (1 - t)
    close(z, (1 - t) * x0 + t * eps, scale)  # E[z_t | z_t] = z


@given(st.data(), mixtures(), times())
def test_velocity_from_the_autograd_score_of_the_marginal(data, mixture, t):
    z = data.draw(points(mixture.dim)).requires_grad_(True)
    (grad,) = torch.autograd.grad(mixture.marginal(t).log_prob(z).sum(), z)
    z = z.detach()
    scale = scale_of(z, mixture.means) ** 2
    close((1 - t) * mixture.velocity(z, t), -(z + t * grad), scale)  # v = -(z + t grad log p_t) / (1 - t)
    close(mixture.score(z, t), grad, scale)


@given(st.data(), mixtures(), times())
def test_fast_kernels_equal_the_reference_formula(data, mixture, t):
    """The chunked kernels (used for large batches) against the plain formula, on the same points."""
    z = data.draw(points(mixture.dim, n=7))
    scale = scale_of(z, mixture.means) ** 2
    with (
        mock.patch.object(flowtoy._mixture, "_SMALL_BATCH", 0),
        mock.patch.object(flowtoy._kernels, "_WORKING_SET_BYTES", 0),
    ):  # force the kernels, in several chunks (the minimum chunk is 1024 rows: use a big batch)
        big = z.repeat(300, 1)  # (2100, d)
        for kind in ["velocity", "denoise", "noise", "score"]:
            fast = mixture._posterior(big, t, kind)
            close(fast, mixture._posterior(big, t, kind, reference=True), scale)


@given(st.data(), mixtures())
def test_boundary_values(data, mixture):
    z = data.draw(points(mixture.dim))
    scale = scale_of(z, mixture.means)
    close(mixture.velocity(z, 0.0), -z, scale)  # at the data end the velocity is -z
    close(mixture.velocity(z, 1.0), z - mixture.mean(), scale)  # at the noise end, z - E[x0]
    close(mixture.denoise(z, 1.0), mixture.mean().expand_as(z), scale)


@given(st.data(), mixtures(dims=(1, 3), spread=(0.3, 3.0)), times(interior=True))
def test_continuity_equation(data, mixture, t):
    """d/dt log p_t + grad log p_t . v + div v = 0, i.e. dp_t/dt + div(p_t v) = 0, by autograd."""
    for z in data.draw(points(mixture.dim, n=3, scale=4.0)):
        tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        z = z.clone().requires_grad_(True)
        dlogp_dt, grad = torch.autograd.grad(mixture.marginal(tt).log_prob(z), (tt, z))
        v = mixture.velocity(z.detach(), t)
        jac = torch.autograd.functional.jacobian(lambda y: mixture.velocity(y, t), z.detach())
        terms = torch.stack([dlogp_dt, grad @ v, torch.trace(jac)])
        assert abs(terms.sum().item()) <= 1e-7 * (1 + terms.abs().sum().item()), terms


@given(st.data(), mixtures(), times())
def test_batch_invariance(data, mixture, t):
    """Each row is computed alone: a point's velocity does not depend on the rest of the batch."""
    z = data.draw(points(mixture.dim, n=6))
    v = mixture.velocity(z, t)
    rows = torch.cat([mixture.velocity(z[i : i + 1], t) for i in range(len(z))])
    perm = torch.randperm(len(z), generator=torch.Generator().manual_seed(0))
    scale = scale_of(z, mixture.means) ** 2
    close(rows, v, scale)
    close(mixture.velocity(z[perm], t), v[perm], scale)
    close(mixture.velocity(z.reshape(2, 3, -1), t), v.reshape(2, 3, -1), scale)
    close(mixture.log_prob(z[:1]), mixture.log_prob(z)[:1], scale)


@given(st.data(), mixtures(), times())
def test_numpy_input_gives_the_torch_result(data, mixture, t):
    z = data.draw(points(mixture.dim))
    assert torch.equal(mixture.velocity(z.numpy(), t), mixture.velocity(z, t))
    assert torch.equal(mixture.log_prob(z.numpy()), mixture.log_prob(z))
    assert torch.equal(mixture.velocity(z, torch.tensor(t, dtype=torch.float64)), mixture.velocity(z, t))


@given(st.data(), mixtures(spread=(0.3, 3.0)), times())
def test_float32_agrees_with_float64_to_float32_precision(data, mixture, t):
    z = data.draw(points(mixture.dim))
    v32 = mixture.velocity(z.float(), t)
    assert v32.dtype == torch.float32
    scale = scale_of(z, mixture.means) ** 2
    eps32 = torch.finfo(torch.float32).eps
    torch.testing.assert_close(v32.double(), mixture.velocity(z, t), rtol=0, atol=1e3 * eps32 * scale)


PAPER_SOURCE = flowtoy.paper.source()
DTYPES = [torch.float16, torch.bfloat16, torch.float32]


@pytest.mark.parametrize("n", [1, 5000])  # the plain formula and the chunked kernels
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@settings(max_examples=10)
@given(z=arrays((2,), -600, 600), t=times())
@example(z=np.array([300.0, -200.0]), t=0.5)  # NaN in float16 for n = 1 before half precision was upcast
def test_half_precision_points_give_the_float64_value_cast_down_whatever_the_batch(dtype, n, z, t):
    """float16 overflows at |z - mu|^2 > 65504: half-precision points are evaluated in float32, so the
    result is finite and, whatever the batch size, the float64 value rounded to the input's dtype.

    Tolerance: one rounding to the input's dtype (``rtol``), plus float32's own error: the log
    densities have size ``|z|^2 / 2`` and their rounding moves the responsibilities (near ``t = 1``
    the modes are hard to tell apart). Over 3000 random cases the float32 error stayed below
    ``11 eps32 scale^2``.
    """
    point = torch.from_numpy(z).to(dtype)
    batch = point.expand(n, 2)
    scale = scale_of(point.double(), PAPER_SOURCE.means)
    rtol, atol = torch.finfo(dtype).eps, 20 * EPS32 * scale**2
    for f in (PAPER_SOURCE.velocity, PAPER_SOURCE.denoise, PAPER_SOURCE.expected_noise, PAPER_SOURCE.score):
        out = f(batch, t)
        assert out.dtype == dtype and out.shape == (n, 2) and torch.isfinite(out).all(), f.__name__
        exact = f(point.double(), t).to(dtype).double()
        torch.testing.assert_close(out.double(), exact.expand(n, 2), rtol=rtol, atol=atol, msg=f.__name__)
    log_p = PAPER_SOURCE.log_prob(batch)  # may be -inf in float16: the exact value is below -65504 there
    assert log_p.dtype == dtype
    exact = PAPER_SOURCE.log_prob(point.double()).to(dtype).double()
    torch.testing.assert_close(log_p.double(), exact.expand(n), rtol=rtol, atol=atol)


@given(st.data(), mixtures())
def test_marginal_at_the_ends(data, mixture):
    z = data.draw(points(mixture.dim))
    scale = scale_of(z, mixture.means) ** 2
    close(mixture.marginal(0.0).log_prob(z), mixture.log_prob(z), scale)
    standard = -0.5 * (z * z).sum(-1) - 0.5 * mixture.dim * torch.log(torch.tensor(2 * torch.pi, dtype=z.dtype))
    close(mixture.marginal(1.0).log_prob(z), standard, scale)
