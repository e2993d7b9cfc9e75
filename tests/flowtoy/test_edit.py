"""flowtoy.edit: every method of the toy experiment, its limits and its errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedit import linear_timesteps
from flowtoy import GaussianMixture, edit, gauss_hermite, metrics, paper

SOURCE, TARGET = paper.source(), paper.target()


def sample(n, seed=0, mixture=SOURCE):
    return mixture.sample(n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("nodes", [1, 3, 6])
def test_gauss_hermite_integrates_polynomials_exactly(nodes):
    eps, w = gauss_hermite(nodes, 2)
    assert eps.shape == (nodes**2, 2) and abs(w.sum().item() - 1) < 1e-14
    # E[eps_1^(2k)] = (2k - 1)!!, exact up to degree 2 nodes - 1 in each coordinate.
    for k in range(nodes):
        moment = (w * eps[:, 0] ** (2 * k)).sum().item()
        assert math.isclose(moment, math.prod(range(1, 2 * k, 2)), rel_tol=1e-10)


def test_flowedit_mean_converges_as_nodes_are_added():
    x = sample(300)
    results = [edit(x, SOURCE, TARGET, "flowedit-mean", steps=20, nodes=n) for n in (2, 4, 8, 16)]
    gaps = [(a - b).abs().max().item() for a, b in zip(results, results[1:], strict=False)]
    # Each doubling of the nodes shrinks the change at least twofold (measured: about 3.5x).
    assert all(later < earlier / 2 for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[-1] < 5e-3, gaps


def test_flowedit_with_many_draws_approaches_the_mean_limit():
    x = sample(200)
    limit = edit(x, SOURCE, TARGET, "flowedit-mean", steps=10, nodes=12)
    err = {
        n_avg: (
            edit(x, SOURCE, TARGET, "flowedit", steps=10, n_avg=n_avg, generator=torch.Generator().manual_seed(3))
            - limit
        )
        .square()
        .mean()
        .sqrt()
        .item()
        for n_avg in (1, 64)
    }
    # Monte Carlo error falls like 1 / sqrt(n_avg): 64 draws should cut it several-fold.
    assert err[64] < err[1] / 4, err


def test_exact_inversion_of_the_symmetric_preset_translates_each_mode():
    """Equal weights and spreads: exact inversion maps each mode onto its nearest target mode by a shift.

    The shift is |(-15, 0) - (-15/sqrt2, -15/sqrt2)|^2 = 450 (1 - 1/sqrt2) = 131.80 in cost, with no crossing.
    """
    x = sample(150)
    y = edit(x, SOURCE, TARGET, "inversion", solver="exact")
    assert metrics.crossing_fraction(x, y, SOURCE, TARGET) == 0.0
    assert abs(metrics.transport_cost(x, y) - 450 * (1 - 1 / math.sqrt(2))) < 1e-3


def test_exact_inversion_accepts_float32_points():
    x = sample(20)
    y32 = edit(x.float(), SOURCE, TARGET, "inversion", solver="exact")
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), edit(x, SOURCE, TARGET, "inversion", solver="exact"), rtol=0, atol=1e-3)


def test_exact_inversion_is_a_round_trip_when_source_equals_target():
    mixture = GaussianMixture([[-2.0, 0.0], [2.0, 1.0]], [0.5, 1.5], [0.3, 0.7])
    x = sample(50, mixture=mixture)
    torch.testing.assert_close(edit(x, mixture, mixture, "inversion", solver="exact"), x, rtol=0, atol=1e-7)


@settings(max_examples=5)
@given(st.integers(0, 10_000))
def test_ot_costs_no_more_than_any_method_on_the_same_points(seed):
    """The exact assignment is the cheapest pairing of x with any set of points, including each method's output."""
    x = sample(150, seed)
    for method in ("flowedit", "flowedit-mean", "inversion", "sdedit", "ot"):
        y = edit(x, SOURCE, TARGET, method, steps=10, generator=torch.Generator().manual_seed(seed + 1))
        assert metrics.ot_cost(x, y) <= metrics.transport_cost(x, y) + 1e-9, method
    y_ot = edit(x, SOURCE, TARGET, "ot", generator=torch.Generator().manual_seed(seed + 1))
    assert math.isclose(metrics.transport_cost(x, y_ot), metrics.ot_cost(x, y_ot), rel_tol=1e-12)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    assert metrics.transport_cost(x, y_ot) <= metrics.transport_cost(x, y_ot[perm])


def test_ot_returns_target_samples():
    y = edit(sample(500), SOURCE, TARGET, "ot", generator=torch.Generator().manual_seed(9))
    fresh = TARGET.sample(500, torch.Generator().manual_seed(9))
    assert torch.equal(torch.sort(y[:, 0]).values, torch.sort(fresh[:, 0]).values)  # a permutation of them


def test_flowedit_keeps_modes_and_inversion_with_few_steps_intermixes():
    x = sample(1000)
    fe = edit(x, SOURCE, TARGET, "flowedit", steps=50, generator=torch.Generator().manual_seed(1))
    inv = edit(x, SOURCE, TARGET, "inversion", steps=5)
    assert metrics.crossing_fraction(x, fe, SOURCE, TARGET) == 0.0
    assert metrics.crossing_fraction(x, inv, SOURCE, TARGET) > 0.3


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((torch.zeros(3, 2), SOURCE, GaussianMixture([[0.0, 0.0, 0.0]])), {}, "source is 2-D but target is 3-D"),
        ((torch.zeros(0, 2), SOURCE, TARGET), {}, r"x_src must have shape \(N, 2\) with N >= 1"),
        ((torch.zeros(3, 2), SOURCE, TARGET), {"steps": 0}, "steps must be an integer >= 1, got 0"),
        ((torch.zeros(3, 2), SOURCE, TARGET), {"steps": 10, "n_max": 12}, "n_max = 12 exceeds"),
        (
            (torch.zeros(3, 2), SOURCE, TARGET),
            {"method": "invert"},
            "unknown method 'invert'; choose one of flowedit, ",
        ),
        ((torch.zeros(3, 2), SOURCE, TARGET), {"solver": "rk5"}, "unknown solver 'rk5'; choose one of euler, heun"),
        (
            (torch.zeros(3, 2), SOURCE, TARGET),
            {"method": "flowedit-mean", "n_avg": 4},
            "apply to method 'flowedit' only",
        ),
    ],
)
def test_bad_input_names_the_valid_choices(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        edit(*args, **kwargs)


def test_paper_preset_weights_must_sum_to_one():
    with pytest.raises(ValueError, match="weights must sum to 1"):
        paper.source(weights=[0.5, 0.6])
    assert SOURCE.means.shape == (2, 2) and torch.allclose(
        TARGET.means, torch.tensor([[-15.0, 0.0], [0.0, 15.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize("method", ["flowedit", "flowedit-mean", "inversion", "sdedit"])
def test_every_method_s_callback_indexes_the_full_grid(method):
    source, target = paper.source(), paper.target()
    x = source.sample(20, torch.Generator().manual_seed(0))
    ts = linear_timesteps(10, dtype=torch.float64).tolist()
    seen = []
    edit(x, source, target, method, steps=10, n_max=6, generator=torch.Generator().manual_seed(1), callback=seen.append)
    assert seen and all(info["t"] == ts[info["i"]] for info in seen)
    assert min(info["i"] for info in seen) == 4  # the first step that edits: T - n_max


def test_a_mask_edits_one_mode_and_keeps_the_other():
    source, target = paper.source(), paper.target()
    x = source.sample(200, generator=torch.Generator().manual_seed(0))
    upper = metrics.nearest_mode(x, source) == 1  # edit the upper-right mode only
    for method in ("flowedit", "flowedit-mean"):
        y = edit(x, source, target, method, steps=10, generator=torch.Generator().manual_seed(1), mask=upper)
        plain = edit(x, source, target, method, steps=10, generator=torch.Generator().manual_seed(1))
        assert torch.equal(y[~upper], x[~upper]) and torch.equal(y[upper], plain[upper])
    with pytest.raises(ValueError, match="mask applies to methods 'flowedit' and 'flowedit-mean' only"):
        edit(x, source, target, "inversion", mask=upper)


# --------------------------------------------------------------------------------------------------
# The Python entry points check their arguments as the command line does: at once, in one line.
HOURS = "a larger run would take hours or run out of memory"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 10**9}, f"steps = 1000000000 is over the limit of 10000; {HOURS}"),
        ({"steps": 10**6}, f"steps = 1000000 is over the limit of 10000; {HOURS}"),
        ({"n_avg": 10**9}, f"n_avg = 1000000000 is over the limit of 1000; {HOURS}"),
        ({"n_max": 10**9}, f"n_max = 1000000000 is over the limit of 10000; {HOURS}"),
        ({"method": "flowedit-mean", "nodes": 10**6}, f"nodes = 1000000 is over the limit of 1000; {HOURS}"),
    ],
)
def test_sizes_that_would_run_for_hours_are_refused_at_once(kwargs, message):
    """D2: the same bounds as the command line (one declaration, flowtoy.Settings), checked before any work."""
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"^{message}$"):
        edit(sample(5), SOURCE, TARGET, **kwargs)
    assert time.perf_counter() - start < 0.5


def test_the_other_entry_points_share_the_bounds():
    from flowtoy import digits, plot
    from flowtoy.cli import compare
    from flowtoy.sweep import sweep

    calls = {
        "n = 1000000000 is over the limit of 2000000": lambda: SOURCE.sample(10**9),
        "steps = 1000000 is over the limit of 10000": lambda: sweep([2, 10**6], n=10, progress=False),
        "n_avg = 1000000000 is over the limit of 1000": lambda: compare(n=10, n_avg=10**9),
        "steps = 1000000000 is over the limit of 10000": lambda: digits.compare(3, 8, steps=10**9),
        "grid = 1000000 is over the limit of 1000": lambda: plot.velocity_field(SOURCE, 0.5, grid=10**6),
        "nodes = 100000 is over the limit of 1000": lambda: gauss_hermite(10**5, 1),
        "n_max = 100000 is over the limit of 10000": lambda: digits.tradeoff([(3, 8)], n_max=(10, 10**5)),
    }
    for message, call in calls.items():
        with pytest.raises(ValueError, match=f"^{message}; {HOURS}$"):
            call()


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (
            ("paper", TARGET),
            {},
            TypeError,
            r"^source must be a flowtoy.GaussianMixture \(e.g. flowtoy.paper.source\(\)\), got 'paper'$",
        ),
        ((SOURCE, None), {}, TypeError, r"^target must be a flowtoy.GaussianMixture .*, got None$"),
        (
            (SOURCE, TARGET),
            {"generator": 42},
            TypeError,
            r"^generator must be a torch.Generator or None, got 42; for a seed s pass torch.Generator\(\).manual_seed\(s\)$",
        ),
        ((SOURCE, TARGET), {"steps": 10.0}, ValueError, r"^steps must be an integer >= 1, got 10.0$"),
        ((SOURCE, TARGET), {"n_avg": "2"}, ValueError, r"^n_avg must be an integer >= 1, got '2'$"),
        ((SOURCE, TARGET), {"method": 3}, ValueError, r"^unknown method 3; choose one of flowedit, "),
        ((SOURCE, TARGET), {"callback": "print"}, TypeError, r"^callback must be a function .* got str$"),
    ],
)
def test_arguments_of_the_wrong_kind_are_named(args, kwargs, error, message):
    """U10: one line naming the argument, what it got and what it takes (not a failure deep in torch)."""
    with pytest.raises(error, match=message):
        edit(sample(5), *args, **kwargs)


@pytest.mark.parametrize(
    "points",
    ["abc", [["a", "b"]], [[1.0, None]], {"x": 1}, torch.zeros(3, 2, dtype=torch.complex64)],
    ids=["string", "strings", "None", "dict", "complex"],
)
def test_points_that_are_not_numbers_are_named(points):
    with pytest.raises(TypeError, match=r"^x_src must (be points of shape \(N, 2\)|hold real numbers)"):
        edit(points, SOURCE, TARGET)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.data(), st.sampled_from([float("nan"), float("inf"), -float("inf")]))
def test_non_finite_points_are_refused_naming_the_first_bad_row(n, data, bad):
    x = sample(n).numpy().copy()
    row, col = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, 1))
    x[row, col] = bad
    with pytest.raises(ValueError, match=rf"^x_src contains NaN or inf \(row {row}: .*\); points must be finite$"):
        edit(x, SOURCE, TARGET, steps=3)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=1, max_size=6))
def test_integer_and_numpy_points_are_float64_points(rows):
    """numpy arrays, nested lists and integer tensors are the float64 points they hold, bit for bit."""
    exact = torch.tensor(rows, dtype=torch.float64)
    expected = edit(exact, SOURCE, TARGET, steps=4, generator=torch.Generator().manual_seed(0))
    for given_points in (rows, np.array(rows), np.array(rows, dtype=np.int32), torch.tensor(rows), exact.numpy()):
        y = edit(given_points, SOURCE, TARGET, steps=4, generator=torch.Generator().manual_seed(0))
        assert y.dtype == torch.float64 and torch.equal(y, expected)


@pytest.mark.parametrize("count", [np.int64(10), np.int32(10), torch.tensor(10), np.uint8(10)])
def test_numpy_and_torch_integers_are_counts(count):
    x = sample(20)
    plain = edit(x, SOURCE, TARGET, steps=10, n_max=8, n_avg=2, generator=torch.Generator().manual_seed(1))
    y = edit(
        x, SOURCE, TARGET, steps=count, n_max=count - 2, n_avg=count // 5, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(y, plain)
    assert SOURCE.sample(count).shape == (10, 2)


def test_a_mixture_needs_a_floating_dtype():
    with pytest.raises(TypeError, match=r"^dtype must be a floating torch dtype .* got torch.int64$"):
        GaussianMixture([[0.0, 0.0]], 1.0, dtype=torch.int64)


def test_exact_inversion_is_one_adaptive_solve_per_direction_on_the_grid():
    """ "exact" integrates each direction's whole span at once; callbacks still index the full grid."""
    seen = []
    x = sample(20)
    edit(x, SOURCE, TARGET, "inversion", solver="exact", steps=10, n_max=6, callback=seen.append)
    assert [info["i"] for info in seen] == [10, 9, 8, 7, 6, 5, 4, 5, 6, 7, 8, 9]
    assert [info["phase"] for info in seen] == ["invert"] * 6 + ["sample"] * 6


def test_metrics_take_numpy_and_integer_points_and_bound_their_sizes():
    assert metrics.transport_cost([[0, 0]], np.array([[3, 4]])) == 25.0
    with pytest.raises(ValueError, match=r"^x must have shape \(N, d\), got \(\)$"):
        metrics.transport_cost("ab", [[1, 2]])
    with pytest.raises(ValueError, match=r"^an exact assignment of 3001 points is over the limit of 3000; "):
        metrics.ot_cost(np.zeros((3001, 2)), np.zeros((3001, 2)))


def test_sizes_within_their_bounds_whose_product_is_too_large_are_refused_at_once():
    from flowtoy.cli import main

    x = torch.zeros(100_000, 2, dtype=torch.float64)  # 1e5 points x 2 x 10000 steps x 1000 draws = 2e12 numbers
    source, target = paper.source(), paper.target()
    with pytest.raises(ValueError, match=r"steps x n_avg x points x dimension = 10000 x 1000 x 100000 x 2"):
        edit(x, source, target, "flowedit", steps=10_000, n_avg=1000)
    assert main(["compare", "--n", "2000000", "--n-avg", "1000"]) == 2  # the command line, before any work
