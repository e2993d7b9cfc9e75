"""The editors after FlowEdit (flowalign, dvrf, uniedit) and the inversion papers' solvers, in float64.

Special cases bit for bit (c_t = t is FlowEdit, FlowAlign with zeta = 0 is FlowEdit), identity edits,
and equality with loops transcribed from each method's official code (FlowAlign's ``SD3FlowAlign``,
DVRF's ``models/DVRF.py`` with SGD steps of the grid's size, UniEdit-Flow's two Euler schedulers).
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import EPS64, arrays, grids, mixtures, scale_of

from flowedit import (
    CALLBACK_KEYS,
    UNIEDIT_EPS,
    FireFlow,
    Midpoint,
    RFSolver,
    UniInv,
    dvrf,
    flowalign,
    flowedit,
    integrate,
    linear_timesteps,
    uniedit,
    uniedit_mask,
    velocity_pair,
)
from flowtoy import GaussianMixture

SOURCE = GaussianMixture([[-2.0, 0.5], [2.0, -1.0]], [0.6, 1.2], [0.4, 0.6])
TARGET = GaussianMixture([[-1.0, 3.0], [3.0, 1.0]], [0.8, 0.5], [0.5, 0.5])


def points(seed=0, n=7):
    return SOURCE.sample(n, torch.Generator().manual_seed(seed))


def seeded(seed=1):
    return torch.Generator().manual_seed(seed)


@given(st.data(), mixtures(dims=(1, 3)), grids(), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_dvrf_with_c_t_equal_to_t_and_flowalign_with_zeta_0_are_flowedit_bit_for_bit(data, source, ts, n_avg, seed):
    steps = len(ts) - 1
    n_max = data.draw(st.integers(0, steps))
    target = GaussianMixture(source.means + 1.5, source.covs, source.weights)
    x = torch.from_numpy(data.draw(arrays((5, source.dim), -5, 5)))
    mask = data.draw(st.sampled_from([None, torch.tensor([[1.0], [0.0], [0.5], [1.0], [0.25]], dtype=torch.float64)]))
    pair = velocity_pair(source.velocity, target.velocity)
    options = {"n_max": n_max, "n_avg": n_avg, "mask": mask}
    expected = flowedit(x, pair, ts, generator=seeded(seed), **options)
    assert torch.equal(dvrf(x, pair, ts, eta=1.0, progressive=False, generator=seeded(seed), **options), expected)
    assert torch.equal(flowalign(x, pair, ts, zeta=0.0, generator=seeded(seed), **options), expected)


@settings(max_examples=10)
@given(st.data(), mixtures(), grids(max_steps=8), st.integers(0, 2**32 - 1))
def test_identity_edits_leave_every_point_unchanged(data, source, ts, seed):
    """Source = target: z_tar = z_src exactly at the first step, so every update is exactly 0."""
    x = torch.from_numpy(data.draw(arrays((4, source.dim), -6, 6)))
    pair = velocity_pair(source.velocity, source.velocity)
    steps = len(ts) - 1
    assert torch.equal(flowalign(x, pair, ts, zeta=data.draw(st.floats(0, 0.1)), generator=seeded(seed)), x)
    for eta, progressive in [(0.0, True), (0.3, False)]:
        assert torch.equal(dvrf(x, pair, ts, n_max=steps, eta=eta, progressive=progressive, generator=seeded(seed)), x)


def official_flowalign(x_src, v_src, v_tar, ts, w, zeta, generator):
    """``SD3FlowAlign.sample`` with velocities for prompts: the target guided by the source as negative."""
    xt = x_src.clone()
    for i in range(len(ts) - 1):
        eps = torch.randn_like(x_src, generator=generator)
        sigma, sigma_next = ts[i].item(), ts[i + 1].item()
        qt = (1 - sigma) * x_src + sigma * eps
        pt = xt + qt - x_src
        vpc, vpn = v_tar(pt, sigma), v_src(pt, sigma)
        vp = vpn + w * (vpc - vpn)
        vq = v_src(qt, sigma)
        xt = xt + (sigma_next - sigma) * (vp - vq) + zeta * (qt - sigma * vq - pt + sigma * vp)
    return xt


@pytest.mark.parametrize(("w", "zeta"), [(1.0, 0.01), (3.0, 0.01), (1.0, 0.2)])
def test_flowalign_equals_the_official_loop(w, zeta):
    ts, x = linear_timesteps(12), points()

    def guided(z_src, z_tar, t):
        negative = SOURCE.velocity(z_tar, t)
        return SOURCE.velocity(z_src, t), negative + w * (TARGET.velocity(z_tar, t) - negative)

    expected = official_flowalign(x, SOURCE.velocity, TARGET.velocity, ts, w, zeta, seeded())
    y = flowalign(x, guided, ts, zeta=zeta, generator=seeded())
    torch.testing.assert_close(y, expected, rtol=0, atol=1e3 * EPS64 * scale_of(x, expected))


def test_flowalign_x0hat_term_is_a_shorter_step_and_a_pull_back_to_the_source():
    """x0hat_src(q) - x0hat_tar(p) = t (v_tar(p) - v_src(q)) - (z - x_src): FlowEdit with step dt + zeta t
    and a pull -zeta (z - x_src) per step, and x0hat = z - t v is the mixture's exact denoiser."""
    ts, x, zeta = linear_timesteps(10), points(), 0.05
    z, g = x.clone(), seeded()
    for i in range(10):
        t, t_next = ts[i].item(), ts[i + 1].item()
        q = (1 - t) * x + t * torch.randn_like(x, generator=g)
        p = q + (z - x)
        torch.testing.assert_close(p - t * TARGET.velocity(p, t), TARGET.denoise(p, t), rtol=0, atol=1e-12)
        z = z + (t_next - t + zeta * t) * (TARGET.velocity(p, t) - SOURCE.velocity(q, t)) - zeta * (z - x)
    y = flowalign(x, velocity_pair(SOURCE.velocity, TARGET.velocity), ts, zeta=zeta, generator=seeded())
    torch.testing.assert_close(y, z, rtol=0, atol=1e3 * EPS64 * scale_of(x, z))


def official_dvrf(x_src, v_src, v_tar, ts, n_max, eta, generator):
    """``DVRF(scheduler_strategy="descending", B=1)`` with plain SGD whose learning rate is the step's size."""
    T = len(ts) - 1
    z = x_src.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([z], lr=0.1)
    for i in range(T):
        if T - i > n_max:
            continue
        t_i, t_next = ts[i].item(), ts[i + 1].item()
        eta_i = eta * i / T
        noise = torch.randn_like(x_src, generator=generator)
        zt_src = (1 - t_i) * x_src + t_i * noise
        with torch.no_grad():
            zt_tgt = (1 - t_i) * z + t_i * noise + eta_i * t_i * (z - x_src)  # Eq. 6
            grad = v_tar(zt_tgt, t_i) - v_src(zt_src, t_i) + (1 - eta_i) * (z - x_src)  # Eq. 8
        optimizer.param_groups[0]["lr"] = t_i - t_next
        loss = (z * grad).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return z.detach()


@pytest.mark.parametrize(("eta", "n_max"), [(1.0, 12), (0.0, 12), (0.6, 9)])
def test_dvrf_equals_the_official_loop_with_steps_of_the_grid(eta, n_max):
    ts, x = linear_timesteps(12), points()
    expected = official_dvrf(x, SOURCE.velocity, TARGET.velocity, ts, n_max, eta, seeded())
    y = dvrf(x, velocity_pair(SOURCE.velocity, TARGET.velocity), ts, n_max=n_max, eta=eta, generator=seeded())
    torch.testing.assert_close(y, expected, rtol=0, atol=1e3 * EPS64 * scale_of(x, expected))


def test_every_member_of_the_c_t_family_takes_the_same_x0hat_step():
    """With the correction, dt [v_tar - v_src + (1 - c_t/t)(z - x)] = (dt/t)[(z - x) - (x0hat_tar - x0hat_src)]."""
    ts, x, eta = linear_timesteps(8), points(), 0.4
    seen = []
    pair = velocity_pair(SOURCE.velocity, TARGET.velocity)
    y = dvrf(x, pair, ts, n_max=8, eta=eta, progressive=False, generator=seeded(), callback=seen.append)
    z = x
    for info in seen:
        t, z_src, z_tar = info["t"], info["z_src"][0], info["z_tar"][0]
        torch.testing.assert_close(z_tar, z_src + (1 - (1 - eta) * t) * (z - x), rtol=0, atol=1e-13)
        x0_gap = TARGET.denoise(z_tar, t) - SOURCE.denoise(z_src, t)
        z = z + (info["t_next"] - t) / t * ((z - x) - x0_gap)
        torch.testing.assert_close(info["z"], z, rtol=0, atol=1e-11)
    assert torch.equal(seen[-1]["z"], y)


class Image:
    """A single Gaussian over images (B, 3, 2, 2) as 12-D rows: a velocity of image-shaped states."""

    def __init__(self, shift: float):
        g = torch.Generator().manual_seed(5)
        self.mixture = GaussianMixture(torch.randn(1, 12, generator=g, dtype=torch.float64) + shift, 0.3 + shift**2)

    def __call__(self, z, t):
        return self.mixture.velocity(z.reshape(-1, 12), t).reshape(z.shape)


def official_uniedit(x, v_inv, v_src, v_tar, ts, n_max, omega):
    """``UniInvEulerScheduler`` then ``UniEditEulerScheduler`` (4-D latents), their bookkeeping kept."""
    T = len(ts) - 1
    sigmas = ts[T - n_max :].flip(0).tolist()  # increasing, the kept part of the inversion schedule
    latent, sample = x, None
    for k in range(len(sigmas)):
        derivative = v_inv(latent, sigmas[k])
        if sample is None:
            sample, latent = latent, latent + derivative * (sigmas[1] - sigmas[0])
        else:
            sample = sample + (sigmas[k] - sigmas[k - 1]) * derivative
            latent = sample + (sigmas[k + 1] - sigmas[k]) * derivative if k + 1 < len(sigmas) else sample
    z, b = latent, x.shape[0]
    for i in range(T - n_max, T):
        sigma, sigma_next = ts[i].item(), ts[i + 1].item()
        vs, vt = v_src(z, sigma), v_tar(z, sigma)
        guidance = vt - vs
        mask = guidance.mean(dim=1, keepdim=True)
        low = mask.reshape(b, -1).min(dim=1).values.reshape(b, 1, 1, 1)
        high = mask.reshape(b, -1).max(dim=1).values.reshape(b, 1, 1, 1)
        mask = (mask - low) / (high - low + 1e-7)
        z = (
            z
            + omega * (sigma_next - sigma) * (1 + mask) * guidance
            + (sigma_next - sigma) * (mask * vt + (1 - mask) * vs)
        )
    return z


@pytest.mark.parametrize(("n_max", "omega"), [(6, 5.0), (10, 1.0), (1, 0.5)])
def test_uniedit_equals_the_official_schedulers(n_max, omega):
    ts = linear_timesteps(10)
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, generator=seeded(3))
    src, tar = Image(0.0), Image(0.5)
    expected = official_uniedit(x, src, src, tar, ts, n_max, omega)
    y = uniedit(x, src, velocity_pair(src, tar), ts, n_max=n_max, omega=omega)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e3 * EPS64 * scale_of(x, expected))


def test_uniedit_with_equal_velocities_is_a_uni_inv_round_trip_and_reports_each_phase():
    ts, x = linear_timesteps(10), points()
    seen = []
    pair = velocity_pair(SOURCE.velocity, SOURCE.velocity)
    y = uniedit(x, SOURCE.velocity, pair, ts, n_max=6, callback=seen.append)
    noise = integrate(x, SOURCE.velocity, ts[4:].flip(0), method=UniInv())
    torch.testing.assert_close(y, integrate(noise, SOURCE.velocity, ts[4:]), rtol=0, atol=1e-12)
    assert [(info["phase"], info["i"]) for info in seen] == [("invert", i) for i in range(10, 4, -1)] + [
        ("edit", i) for i in range(4, 10)
    ]
    assert all(set(info) == set(CALLBACK_KEYS) for info in seen)


@given(arrays((3, 2, 4), -5, 5), st.sampled_from([None, 1, 2]))
def test_the_uniedit_mask_is_a_per_sample_min_max_of_the_channel_mean(delta, channel_dim):
    delta = torch.from_numpy(delta)
    m = uniedit_mask(delta, channel_dim)
    g = delta if channel_dim is None else delta.mean(dim=channel_dim, keepdim=True)
    assert m.shape == g.shape and bool(((m >= 0) & (m < 1)).all())
    for b in range(3):
        spread = g[b].max() - g[b].min()
        torch.testing.assert_close(m[b], (g[b] - g[b].min()) / (spread + UNIEDIT_EPS), rtol=0, atol=0)


def test_a_sample_with_one_position_gets_the_mask_zero():
    """2-D points are one position with two channels: the min-max has nothing to compare."""
    assert torch.equal(uniedit_mask(torch.tensor([[3.0, -1.0], [0.5, 2.0]]), 1), torch.zeros(2, 1))


def test_rf_solver_is_the_midpoint_method_up_to_rounding_and_fireflow_reuses_one_velocity_per_step():
    ts, x = linear_timesteps(16), points()
    a = integrate(x, SOURCE.velocity, ts, method=RFSolver())
    torch.testing.assert_close(a, integrate(x, SOURCE.velocity, ts, method=Midpoint()), rtol=0, atol=1e-13)
    for solver in (FireFlow(), UniInv()):
        calls = []

        def counted(z, t, calls=calls):
            calls.append(t)
            return SOURCE.velocity(z, t)

        first = integrate(x, counted, ts, method=solver)
        assert len(calls) == 16 + 1  # one per step, plus one on the first step
        assert torch.equal(integrate(x, counted, ts, method=solver), first)  # a new solve starts afresh
        assert len(calls) == 2 * 17


def official_fireflow(x, v, ts):
    """FireFlow's sampling loop: the midpoint step, its first stage the previous midpoint velocity."""
    img, carried = x, None
    for t_curr, t_prev in zip(ts[:-1].tolist(), ts[1:].tolist(), strict=True):
        pred = v(img, t_curr) if carried is None else carried
        img_mid = img + (t_prev - t_curr) / 2 * pred
        carried = v(img_mid, t_curr + (t_prev - t_curr) / 2)
        img = img + (t_prev - t_curr) * carried
    return img


def test_fireflow_equals_its_loop_in_both_directions():
    ts, x = linear_timesteps(9), points()
    for grid in (ts, ts.flip(0)):
        assert torch.equal(
            integrate(x, SOURCE.velocity, grid, method=FireFlow()), official_fireflow(x, SOURCE.velocity, grid)
        )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, x, ts: flowalign(x, p, ts, zeta=-0.1), r"^zeta must be a finite number >= 0, got -0\.1$"),
        (lambda p, x, ts: flowalign(x, p, ts, zeta="big"), r"^zeta must be a real number, got 'big'"),
        (lambda p, x, ts: dvrf(x, p, ts, n_max=4, eta=1.5), r"^eta must be a finite number in \[0, 1\], got 1\.5$"),
        (lambda p, x, ts: dvrf(x, p, ts, n_max=9), r"^n_max = 9 exceeds the number of steps \(4\)"),
        (lambda p, x, ts: uniedit(x, SOURCE.velocity, p, ts, n_max=2, omega=math.nan), r"^omega must be a finite"),
        (
            lambda p, x, ts: uniedit(x, SOURCE.velocity, p, ts, n_max=2, channel_dim=2),
            r"^channel_dim = 2 is not a dimension of a sample of shape \(7, 2\)$",
        ),
    ],
)
def test_bad_settings_are_refused_in_one_line(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(velocity_pair(SOURCE.velocity, TARGET.velocity), points(), linear_timesteps(4))
