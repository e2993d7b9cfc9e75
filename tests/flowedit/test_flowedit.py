"""FlowEdit (Algorithm S1) and the baselines: exact invariants, batching, reproducibility, errors."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import EPS64, arrays, grids, mixtures, scale_of

from flowedit import CALLBACK_KEYS, edit_by_inversion, flowedit, integrate, linear_timesteps, sdedit, velocity_pair
from flowtoy import GaussianMixture


def copy_of(m: GaussianMixture, shift=None) -> GaussianMixture:
    means = m.means if shift is None else m.means + torch.as_tensor(shift)
    return GaussianMixture(means, m.covs, m.weights)


@given(st.data(), mixtures(), grids(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_identity_edit_leaves_every_point_unchanged(data, source, ts, n_avg, seed):
    """Source = target: v_tar(z_tar) - v_src(z_src) is exactly 0 because z_tar = z_src, so x stays put."""
    steps = len(ts) - 1
    n_max = data.draw(st.integers(0, steps))
    x = torch.from_numpy(data.draw(arrays((6, source.dim), -6, 6)))
    pair = velocity_pair(source.velocity, source.velocity)
    y = flowedit(x, pair, ts, n_max=n_max, n_avg=n_avg, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(y, x)


@given(st.data(), mixtures(), grids(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_translation_edit_maps_every_point_to_its_translate(data, source, ts, n_avg, seed):
    """Target = source + delta: v_tar(z + a delta) = v_src(z) - delta, so z_i - x = (1 - t_i) delta at
    every step, whatever the noise, and the full path (n_max = T) ends exactly at x + delta."""
    delta = torch.from_numpy(data.draw(arrays((source.dim,), -5, 5)))
    x = torch.from_numpy(data.draw(arrays((6, source.dim), -6, 6)))
    pair = velocity_pair(source.velocity, copy_of(source, delta).velocity)
    y = flowedit(x, pair, ts, n_max=len(ts) - 1, n_avg=n_avg, generator=torch.Generator().manual_seed(seed))
    scale = scale_of(x, delta, source.means) ** 2
    torch.testing.assert_close(y, x + delta, rtol=0, atol=1e6 * EPS64 * scale)


def reference_flowedit(x_src, v_src, v_tar, ts, n_max, n_min, n_avg, generator):
    """A straightforward transcription of Algorithm S1: loops, one velocity call per branch and draw."""
    T = len(ts) - 1
    z_edit = x_src.clone()
    for i in range(T):
        if T - i > n_max:
            continue
        t, t_next = ts[i].item(), ts[i + 1].item()
        if T - i > n_min:
            v_delta = torch.zeros_like(x_src)
            for _ in range(n_avg):
                noise = torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype)
                zt_src = (1 - t) * x_src + t * noise
                zt_tar = z_edit + zt_src - x_src
                v_delta += (v_tar(zt_tar, t) - v_src(zt_src, t)) / n_avg
            z_edit = z_edit + (t_next - t) * v_delta
        else:
            if T - i == n_min:
                noise = torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype)
                xt_tar = z_edit + (1 - t) * x_src + t * noise - x_src
            xt_tar = xt_tar + (t_next - t) * v_tar(xt_tar, t)
    return z_edit if n_min == 0 else xt_tar


@given(st.data(), st.integers(1, 3), st.integers(0, 1000))
def test_equals_a_straightforward_reference_loop(data, n_avg, seed):
    source, target = GaussianMixture([[-3.0, -3.0], [3.0, 3.0]], 1.0), GaussianMixture([[-4.0, 0.0], [0.0, 4.0]], 0.5)
    steps = data.draw(st.integers(1, 12))
    n_max = data.draw(st.integers(0, steps))
    n_min = data.draw(st.integers(0, n_max))
    ts = linear_timesteps(steps)
    x = source.sample(20, torch.Generator().manual_seed(seed))
    ours = flowedit(
        x,
        velocity_pair(source, target),
        ts,
        n_max=n_max,
        n_min=n_min,
        n_avg=n_avg,
        generator=torch.Generator().manual_seed(seed),
    )
    ref = reference_flowedit(x, source, target, ts, n_max, n_min, n_avg, torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e4 * EPS64 * scale_of(x) ** 2)


def test_all_draws_go_to_the_velocity_in_one_call_per_step():
    source, target = GaussianMixture([[0.0, 0.0]], 1.0), GaussianMixture([[1.0, 0.0]], 1.0)
    calls = []

    def pair(z_src, z_tar, t):
        calls.append((None if z_src is None else tuple(z_src.shape), tuple(z_tar.shape)))
        return (None if z_src is None else source.velocity(z_src, t)), target.velocity(z_tar, t)

    x = torch.zeros(7, 2, dtype=torch.float64)
    flowedit(x, pair, linear_timesteps(10), n_max=8, n_min=3, n_avg=5, generator=torch.Generator().manual_seed(0))
    assert calls == [((5, 7, 2), (5, 7, 2))] * 5 + [(None, (1, 7, 2))] * 3


@given(st.integers(1, 10), st.integers(0, 1000))
def test_n_min_equal_n_max_is_sdedit(n, seed):
    """With n_min = n_max no step edits: FlowEdit is SDEdit from t = ts[T - n_max] with the same noise."""
    source, target = GaussianMixture([[-2.0, 0.0]], 1.0), GaussianMixture([[0.0, 2.0], [2.0, 0.0]], 0.3)
    ts = linear_timesteps(10)
    x = source.sample(30, torch.Generator().manual_seed(seed))
    ours = flowedit(
        x, velocity_pair(source, target), ts, n_max=n, n_min=n, generator=torch.Generator().manual_seed(seed)
    )
    ref = sdedit(x, target, ts, n_max=n, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e3 * EPS64 * scale_of(x))


def test_same_seed_same_bits_and_callback_trajectory():
    source, target = GaussianMixture([[-2.0, 0.0]], 1.0), GaussianMixture([[2.0, 0.0]], 1.0)
    x = source.sample(10, torch.Generator().manual_seed(0))
    seen = []
    pair, ts = velocity_pair(source, target), linear_timesteps(8)
    a = flowedit(
        x, pair, ts, n_max=6, n_min=2, n_avg=3, generator=torch.Generator().manual_seed(5), callback=seen.append
    )
    b = flowedit(x, pair, ts, n_max=6, n_min=2, n_avg=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert [s["i"] for s in seen] == [2, 3, 4, 5, 6, 7]
    assert [s["phase"] for s in seen] == ["edit"] * 4 + ["sample"] * 2
    assert torch.equal(seen[-1]["z"], a)


def test_every_method_calls_back_with_the_same_keys_and_i_indexing_ts():
    source, target = GaussianMixture([[-2.0, 0.0]], 1.0), GaussianMixture([[2.0, 0.0]], 1.0)
    x, ts = source.sample(5, torch.Generator().manual_seed(0)), linear_timesteps(6)
    seen = {}

    def recorder(name):
        return lambda info: seen.setdefault(name, []).append(info)

    gen = torch.Generator().manual_seed(1)
    integrate(x, target, ts, callback=recorder("integrate"))
    flowedit(
        x, velocity_pair(source, target), ts, n_max=5, n_min=2, n_avg=3, generator=gen, callback=recorder("flowedit")
    )
    edit_by_inversion(x, source, target, ts, n_max=4, callback=recorder("inversion"))
    sdedit(x, target, ts, n_max=3, generator=gen, callback=recorder("sdedit"))
    assert {name: len(infos) for name, infos in seen.items()} == {
        "integrate": 6,
        "flowedit": 5,
        "inversion": 8,
        "sdedit": 3,
    }
    for name, infos in seen.items():
        for info in infos:
            assert tuple(info) == CALLBACK_KEYS, name
            assert info["t"] == ts[info["i"]].item(), name
            assert info["z"].shape == x.shape
    assert [info["phase"] for info in seen["flowedit"]] == ["edit"] * 3 + ["sample"] * 2
    assert seen["flowedit"][0]["z_src"].shape == (3, *x.shape) and seen["flowedit"][-1]["z_tar"].shape == (1, *x.shape)
    assert {info["phase"] for info in seen["sdedit"]} == {"sample"} and {i["phase"] for i in seen["integrate"]} == {
        "integrate"
    }
    assert all(info["z_src"] is None for name in ("integrate", "inversion", "sdedit") for info in seen[name])


def test_inversion_with_an_accurate_solver_and_equal_models_is_a_round_trip():
    mixture = GaussianMixture([[-2.0, 0.0], [2.0, 1.0]], [0.5, 1.5], [0.3, 0.7])
    x = mixture.sample(40, torch.Generator().manual_seed(0))
    y = edit_by_inversion(x, mixture, copy_of(mixture), linear_timesteps(100), method="rk4")
    torch.testing.assert_close(y, x, rtol=0, atol=1e-6)


def test_baselines_phases_and_zero_steps():
    mixture = GaussianMixture([[0.0]], 1.0)
    x = torch.ones(3, 1, dtype=torch.float64)
    phases = []
    edit_by_inversion(x, mixture, mixture, linear_timesteps(4), n_max=3, callback=lambda s: phases.append(s["phase"]))
    assert phases == ["invert"] * 3 + ["sample"] * 3
    assert torch.equal(edit_by_inversion(x, mixture, mixture, linear_timesteps(4), n_max=0), x)
    assert torch.equal(sdedit(x, mixture, linear_timesteps(4), n_max=0), x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_max": 11}, "n_max = 11 exceeds the number of steps \\(10\\)"),
        ({"n_max": 5, "n_min": 6}, "n_min = 6 exceeds n_max = 5"),
        ({"n_max": 5, "n_avg": 0}, "n_avg must be an integer >= 1"),
        ({"n_max": -1}, "n_max must be an integer >= 0"),
        ({"n_max": 5, "n_min": 1.5}, "n_min must be an integer >= 0"),
        ({"n_max": 5, "ts": torch.linspace(0, 1, 11)}, "must decrease"),
        ({"n_max": 5, "ts": torch.tensor([1.0, 0.5, 0.5, 0.0])}, "strictly monotone"),
        ({"n_max": 1, "ts": torch.tensor([1.0, -0.1])}, r"\[0, 1\]"),
        ({"n_max": 1, "ts": torch.tensor([1.0, float("nan")])}, "NaN"),
    ],
)
def test_bad_arguments_get_clear_errors(kwargs, message):
    m = GaussianMixture([[0.0, 0.0]], 1.0)
    kwargs = {"ts": linear_timesteps(10), **kwargs}
    with pytest.raises(ValueError, match=message):
        flowedit(torch.zeros(2, 2, dtype=torch.float64), velocity_pair(m, m), **kwargs)


def test_a_velocity_of_the_wrong_shape_is_named():
    x = torch.zeros(4, 2, dtype=torch.float64)
    bad = velocity_pair(lambda z, t: z, lambda z, t: z[..., :1])
    with pytest.raises(ValueError, match=r"velocity pair \(target\) returned shape \(1, 4, 1\).*\(1, 4, 2\)"):
        flowedit(x, bad, linear_timesteps(3), n_max=3)
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        flowedit(x, velocity_pair(lambda z, t: z, lambda z, t: z.numpy()), linear_timesteps(3), n_max=3)


def test_a_mask_keeps_the_source_where_it_is_0_and_is_the_plain_edit_where_it_is_1():
    source, target = GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], 1.0), GaussianMixture([[0.0, 3.0]], 1.0)
    x = source.sample(12, torch.Generator().manual_seed(0))
    pair, ts = velocity_pair(source, target), linear_timesteps(8)
    for n_min in (0, 2):  # the n_min phase keeps the masked-out points on the source's noisy path, ending at x

        def run(mask=None, n_min=n_min):
            return flowedit(
                x, pair, ts, n_max=6, n_min=n_min, n_avg=3, generator=torch.Generator().manual_seed(5), mask=mask
            )

        plain = run()
        assert torch.equal(run(torch.ones(12, 2, dtype=torch.float64)), plain)
        assert torch.equal(run(torch.zeros(12, 1, dtype=torch.float64)), x)
        rows = (torch.arange(12) % 2 == 0).double()[:, None]  # edit every other point: the velocities are pointwise
        mixed = run(rows)
        assert torch.equal(mixed[::2], plain[::2]) and torch.equal(mixed[1::2], x[1::2])


def test_a_soft_mask_scales_the_update():
    x = torch.zeros(4, 3, dtype=torch.float64)
    pair = velocity_pair(lambda z, t: torch.zeros_like(z), lambda z, t: torch.ones_like(z))  # v_tar - v_src = 1
    mask = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)[:, None]
    y = flowedit(x, pair, linear_timesteps(10), n_max=6, generator=torch.Generator().manual_seed(0), mask=mask)
    torch.testing.assert_close(y, -0.6 * mask.expand(4, 3), rtol=0, atol=1e-15)  # dz/dt = m from t = 0.6 to 0


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ([1.0, 0.0], "mask must be a tensor"),
        (torch.ones(3, 2), r"mask of shape \(3, 2\) does not broadcast to the sample's \(4, 2\)"),
        (torch.full((4, 1), 1.5), r"mask values must lie in \[0, 1\]"),
        (torch.full((4, 2), float("nan")), r"mask values must lie in \[0, 1\]"),
    ],
)
def test_bad_masks_get_one_clear_error(mask, message):
    pair = velocity_pair(lambda z, t: z, lambda z, t: z)
    with pytest.raises(ValueError, match=message):
        flowedit(torch.zeros(4, 2), pair, linear_timesteps(3), n_max=3, mask=mask)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (None, r"^velocity pair must return a tuple \(v_src, v_tar\) of two tensors, got None$"),
        ("v", r"^velocity pair must return a tuple \(v_src, v_tar\) of two tensors, got 'v'$"),
        ((1, 2, 3), r"^velocity pair must return a tuple \(v_src, v_tar\) of two tensors, got \(1, 2, 3\) \(tuple\)$"),
    ],
)
@pytest.mark.parametrize("n_min", [0, 2])  # the editing steps and the final target sampling
def test_a_velocity_pair_that_returns_no_pair_is_named(returned, message, n_min):
    pair = velocity_pair(lambda z, t: z, lambda z, t: z)
    calls = []

    def broken(z_src, z_tar, t):  # a good pair for the editing steps, then a bad one
        calls.append(t)
        return pair(z_src, z_tar, t) if n_min and z_src is not None else returned

    with pytest.raises(TypeError, match=message):
        flowedit(torch.zeros(4, 2), broken, linear_timesteps(4), n_max=3, n_min=n_min)


def test_a_generator_must_be_a_generator():
    pair = velocity_pair(lambda z, t: z, lambda z, t: z)
    for call in (
        lambda: flowedit(torch.zeros(4, 2), pair, linear_timesteps(4), n_max=3, generator=42),
        lambda: sdedit(torch.zeros(4, 2), lambda z, t: z, linear_timesteps(4), n_max=3, generator=42),
    ):
        with pytest.raises(TypeError, match=r"^generator must be a torch.Generator or None, got 42; for a seed s pass"):
            call()


def test_numpy_and_torch_integers_are_counts_bit_for_bit():
    source, target = GaussianMixture([[-2.0, 0.0]], 1.0), GaussianMixture([[2.0, 0.0]], 1.0)
    x, pair, ts = (
        source.sample(10, torch.Generator().manual_seed(0)),
        velocity_pair(source, target),
        linear_timesteps(8),
    )
    plain = flowedit(x, pair, ts, n_max=6, n_min=2, n_avg=3, generator=torch.Generator().manual_seed(5))
    counts = {"n_max": np.int64(6), "n_min": torch.tensor(2), "n_avg": np.int32(3)}
    assert torch.equal(flowedit(x, pair, ts, **counts, generator=torch.Generator().manual_seed(5)), plain)


def test_options_after_ts_are_keyword_only():
    pair = velocity_pair(lambda z, t: z, lambda z, t: z)
    with pytest.raises(TypeError, match="positional argument"):
        flowedit(torch.zeros(4, 2), pair, linear_timesteps(4), 3)
    with pytest.raises(TypeError, match="positional argument"):
        integrate(torch.zeros(4, 2), lambda z, t: z, linear_timesteps(4), "rk4")
