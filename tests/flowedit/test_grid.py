"""Time grids: endpoints, monotonicity, the SD3 static shift and FLUX's dynamic shift."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import floats

from flowedit import check_count, check_grid, flux_mu, flux_timesteps, linear_timesteps, sd3_timesteps, shift_timesteps


@given(st.integers(1, 200))
def test_linear_grid(steps):
    ts = linear_timesteps(steps)
    assert ts.shape == (steps + 1,) and ts[0] == 1 and ts[-1] == 0
    torch.testing.assert_close(ts[:-1] - ts[1:], torch.full((steps,), 1 / steps, dtype=torch.float64))


@given(st.integers(1, 100), floats(0.1, 10.0))
def test_static_shift_keeps_the_ends_and_order(steps, shift):
    ts = shift_timesteps(linear_timesteps(steps), shift)
    check_grid(ts, decreasing=True)
    assert ts[0] == 1 and ts[-1] == 0
    # The shift is a Moebius map with inverse s -> s / shift: shifting back returns the grid.
    torch.testing.assert_close(shift_timesteps(ts, 1 / shift), linear_timesteps(steps))


@given(st.integers(1, 100), floats(1.0, 6.0))
def test_sd3_grid(steps, shift):
    ts = sd3_timesteps(steps, shift=shift)
    check_grid(ts, decreasing=True)
    assert ts.shape == (steps + 1,) and ts[0] == 1 and ts[-1] == 0
    t_min = shift / 1000 / (1 + (shift - 1) / 1000)
    assert math.isclose(ts[-2].item(), shift * t_min / (1 + (shift - 1) * t_min), rel_tol=1e-12) or steps == 1


def test_flux_mu_endpoints():
    assert flux_mu(256) == pytest.approx(0.5)
    assert flux_mu(4096) == pytest.approx(1.15)  # 1024 x 1024: (1024 / 16)^2 tokens


@given(st.integers(1, 60), floats(-1.0, 3.0))
def test_flux_grid(steps, mu):
    ts = flux_timesteps(steps, mu=mu)
    check_grid(ts, decreasing=True)
    assert ts[0] == 1 and ts[-1] == 0
    # Positive mu spends more of the path at high noise: every interior point moves up.
    if mu > 1e-6 and steps > 1:
        assert (ts[1:-1] > linear_timesteps(steps)[1:-1]).all()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_step_counts(bad):
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got"):
        linear_timesteps(bad)


@pytest.mark.parametrize(
    "count", [10, np.int64(10), np.int32(10), torch.tensor(10), torch.tensor(10, dtype=torch.int8)]
)
def test_numpy_and_torch_integers_are_step_counts(count):
    assert torch.equal(linear_timesteps(count), linear_timesteps(10))
    assert type(check_count(count, "steps", 1)) is int


@pytest.mark.parametrize("bad", [np.float64(10.0), 10.0, "10", np.bool_(True), torch.tensor(True), torch.tensor([10])])
def test_what_is_not_an_integer_is_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 1, got .{1,120}$"):
        check_count(bad, "steps", 1)
