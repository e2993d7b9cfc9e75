"""GaussianMixture's parameters, sampling, stability and error messages."""

import numpy as np
import pytest
import torch

from flowedit import integrate, linear_timesteps
from flowtoy import GaussianMixture
from flowtoy.metrics import energy_distance


def permutation_p_value(x: torch.Tensor, y: torch.Tensor, permutations: int = 200, seed: int = 0) -> float:
    """p-value of the energy-distance two-sample test: how often a random relabelling looks as different."""
    observed = energy_distance(x, y)
    pooled = torch.cat([x, y])
    generator = torch.Generator().manual_seed(seed)
    hits = 0
    for _ in range(permutations):
        perm = torch.randperm(len(pooled), generator=generator)
        hits += energy_distance(pooled[perm[: len(x)]], pooled[perm[len(x) :]]) >= observed
    return (hits + 1) / (permutations + 1)


MIXTURE = GaussianMixture([[-3.0, 0.0], [2.0, 2.0], [1.0, -3.0]], [[0.5, 0.2], [1.0, 1.0], [0.3, 1.5]], [0.5, 0.3, 0.2])


def test_sampling_from_noise_through_the_ode_reproduces_the_mixture():
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(600, 2, dtype=torch.float64, generator=generator)
    samples = integrate(noise, MIXTURE.velocity, linear_timesteps(40), method="rk4")
    fresh = MIXTURE.sample(600, generator)
    assert permutation_p_value(samples, fresh) > 0.05
    # The same test does see a wrong answer: the mixture with its weights permuted.
    wrong = GaussianMixture(MIXTURE.means, MIXTURE.covs, MIXTURE.weights[[2, 0, 1]]).sample(600, generator)
    assert permutation_p_value(samples, wrong) < 0.01


def test_sample_moments_and_reproducibility():
    x = MIXTURE.sample(20000, torch.Generator().manual_seed(1))
    assert torch.equal(x, MIXTURE.sample(20000, torch.Generator().manual_seed(1)))
    mean = MIXTURE.mean()
    centred = MIXTURE.means - mean
    cov = (MIXTURE.weights[:, None, None] * (MIXTURE.covs + centred[:, :, None] * centred[:, None, :])).sum(0)
    se = (cov.diagonal() / len(x)).sqrt()
    assert ((x.mean(0) - mean).abs() < 4 * se).all()
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0.05, atol=0.05)


def test_log_prob_integrates_to_one():
    m = GaussianMixture([[-1.0], [2.0]], [0.3, 1.0], [0.4, 0.6])
    grid = torch.linspace(-12, 14, 20001, dtype=torch.float64)[:, None]
    mass = torch.trapezoid(m.log_prob(grid).exp(), grid[:, 0]).item()
    assert abs(mass - 1) < 1e-9


def test_exact_and_finite_at_the_ends_far_away_and_with_tiny_variances():
    m = GaussianMixture([[-15.0, 0.0], [0.0, 15.0]], [1e-12, 1e-8])
    z = torch.tensor([[1e6, -1e6], [-15.0, 0.0], [0.0, 15.0 + 1e-7], [3.0, 4.0]], dtype=torch.float64)
    for t in [0.0, 1e-9, 0.5, 1 - 1e-9, 1.0]:
        for f in (m.velocity, m.denoise, m.score, m.expected_noise):
            assert torch.isfinite(f(z, t)).all(), (f.__name__, t)
        assert torch.isfinite(m.marginal(t).log_prob(z[1:])).all()
    assert torch.equal(m.velocity(z, 0.0), -z)
    torch.testing.assert_close(m.velocity(z, 1.0), z - m.mean(), rtol=0, atol=1e-9)
    # Far from every mode the responsibilities stay well defined (log space): the nearest mode wins.
    far = torch.tensor([[-1e3, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(m.denoise(far, 0.5), torch.tensor([[-15.0, 0.0]], dtype=torch.float64))


def test_numpy_parameters_and_covariance_forms_agree():
    means = np.array([[0.0, 1.0], [2.0, -1.0]])
    forms = [0.5, [0.5, 0.5], np.full((2, 2), 0.5), np.stack([0.5 * np.eye(2)] * 2)]
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    velocities = [GaussianMixture(means, covs).velocity(z, 0.3) for covs in forms]
    for v in velocities[1:]:
        torch.testing.assert_close(v, velocities[0], rtol=0, atol=1e-14)
    rotated = GaussianMixture(means, np.array([[[1.0, 0.4], [0.4, 0.5]]] * 2))
    assert rotated.U is not None and "full" in repr(rotated)
    torch.testing.assert_close(rotated.covs, torch.tensor([[[1.0, 0.4], [0.4, 0.5]]] * 2, dtype=torch.float64))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, 1.0],), r"means must have shape \(K, d\)"),
        (([[0.0, 1.0]], [[[1.0, 0.5], [0.0, 1.0]]]), r"covs\[0\] is not symmetric"),
        (([[0.0, 1.0]], [[[1.0, 2.0], [2.0, 1.0]]]), r"covs\[0\] is not positive definite"),
        (([[0.0], [1.0]], [1.0, -1.0]), r"covs\[1\] is not positive definite"),
        (([[0.0, 1.0]], np.ones((3, 3))), r"covs must be a scalar variance.*got shape \(3, 3\)"),
        (([[0.0], [1.0]], 1.0, [0.5, -0.5]), "weights must all be positive"),
        (([[0.0], [1.0]], 1.0, [0.5, 0.6]), "weights must sum to 1, got sum 1.1"),
        (([[0.0], [1.0]], 1.0, [1.0]), r"weights must have shape \(2,\)"),
        (([[float("nan")]],), "means contains NaN"),
        (
            ([[0.0], [1.0]], [1.0, 1e-320]),
            r"^covs\[1\] has a variance of 1e-320, below the smallest normal float64 number; variances must be >= 2.23e-308$",
        ),
        (([[0.0, 1.0]], [[1.0, 5e-324]]), r"covs\[0\] has a variance of 4.94e-324, below the smallest normal float64"),
    ],
)
def test_invalid_parameters_say_which_and_why(args, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(*args)


def test_variances_and_means_a_dtype_cannot_hold_are_refused():
    """A subnormal variance makes 1 / lam overflow (NaN everywhere); so does a variance or mean that
    becomes 0 or inf when the parameters are cast to the points' working dtype (float32 for half)."""
    with pytest.raises(
        ValueError, match=r"^covs\[1\] has a variance of 1e-40, below the smallest normal float32 number"
    ):
        GaussianMixture([[0.0], [1.0]], [1.0, 1e-40], dtype=torch.float32)
    assert torch.isfinite(GaussianMixture([[0.0], [1.0]], [1.0, 2.3e-308]).velocity([[0.5]], 0.5)).all()
    z = torch.tensor([[1.0, 2.0]])
    cast = r"in float32, the dtype these points are evaluated in; pass float64 points$"
    too_small = GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [1.0, 1e-300])
    with pytest.raises(
        ValueError,
        match=rf"^covs\[1\] has a variance of 1e-300, outside the normal range \[1.18e-38, 3.4e\+38\] {cast}",
    ):
        too_small.log_prob(z)  # was NaN
    too_large = GaussianMixture([[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1e39]])
    with pytest.raises(ValueError, match=rf"^covs\[1\] has a variance of 1e\+39, outside the normal range .* {cast}"):
        too_large.velocity(z.half(), 0.5)  # was NaN
    with pytest.raises(ValueError, match=rf"^means\[0\] = \[0.0, 1e\+39\] overflows {cast}"):
        GaussianMixture([[0.0, 1e39], [1.0, 1.0]]).denoise(z, 0.5)
    assert torch.isfinite(too_large.velocity(z.double(), 0.5)).all()


def test_invalid_points_and_times():
    m = GaussianMixture([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"points must have shape \(\.\.\., 2\).*got \(4, 3\)"):
        m.velocity(torch.zeros(4, 3), 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        m.velocity(torch.zeros(4, 2), 1.5)
    with pytest.raises(ValueError, match="^n must be an integer >= 0, got -1$"):
        m.sample(-1)
