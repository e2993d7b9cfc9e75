"""``flowtoy.edit`` with the editors after FlowEdit and the inversion papers' solvers, exactly, in float64."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtoy
from flowedit import UniInv, dvrf, integrate, linear_timesteps, velocity_pair
from flowtoy import Settings, digits, edit, paper, round_trip
from flowtoy.cli import compare

SOURCE, TARGET = paper.source(), paper.target()


def points(n=40, seed=0):
    return SOURCE.sample(n, torch.Generator().manual_seed(seed))


def seeded(seed=1):
    return torch.Generator().manual_seed(seed)


@settings(max_examples=10)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_flowalign_without_its_term_and_guidance_is_flowedit_bit_for_bit(steps, seed):
    x = points(12)
    expected = edit(x, SOURCE, TARGET, "flowedit", steps=steps, generator=seeded(seed))
    y = edit(x, SOURCE, TARGET, "flowalign", steps=steps, zeta=0.0, guidance=1.0, generator=seeded(seed))
    assert torch.equal(y, expected)


def test_dds_is_the_c_t_equal_0_end_of_the_core_family():
    x, ts = points(), linear_timesteps(10)
    expected = dvrf(x, velocity_pair(SOURCE.velocity, TARGET.velocity), ts, n_max=10, eta=0.0, generator=seeded())
    assert torch.equal(edit(x, SOURCE, TARGET, "dds", steps=10, generator=seeded()), expected)
    assert not torch.equal(edit(x, SOURCE, TARGET, "dvrf", steps=10, generator=seeded()), expected)


def test_flowalign_guidance_extrapolates_the_target_velocity_with_the_source_as_negative():
    x = points(20)
    plain = edit(x, SOURCE, TARGET, "flowalign", steps=10, generator=seeded())
    guided = edit(x, SOURCE, TARGET, "flowalign", steps=10, guidance=1.5, generator=seeded())
    assert (guided - plain).abs().max() > 0.1


def test_uniedit_on_2d_points_has_no_mask_and_omega_1_is_editing_by_uni_inv_inversion():
    """A 2-D point is one position: the mask is 0 and the step is dt (omega (v_tar - v_src) + v_src);
    with omega = 1 that is dt v_tar, target sampling from the Uni-Inv inversion."""
    x, ts = points(), linear_timesteps(10)
    noise = integrate(x, SOURCE.velocity, ts[4:].flip(0), method=UniInv())
    expected = integrate(noise, TARGET.velocity, ts[4:])
    y = edit(x, SOURCE, TARGET, "uniedit", steps=10, n_max=6, omega=1.0)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-11)


def test_uniedit_on_digits_masks_over_the_64_pixels():
    x = digits.load("test", 3)[0][:5]
    src, tar = digits.model(3), digits.model(8)
    with_mask = edit(x, src, tar, "uniedit", steps=10, n_max=6, omega=0.5, pixels=True)
    without = edit(x, src, tar, "uniedit", steps=10, n_max=6, omega=0.5)
    assert (with_mask - without).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["flowedit", "flowalign", "dvrf", "dds"])
def test_an_identity_round_trip_returns_every_point_exactly(method):
    x = points(10)
    y, back = round_trip(x, SOURCE, SOURCE, method, steps=8, generator=seeded())
    assert torch.equal(y, x) and torch.equal(back, x)


def test_fireflow_and_rf_solver_invert_at_second_order_accuracy():
    """Round trips of editing by inversion on the toy: the second-order solvers come back far closer
    than Euler at 50 steps; FireFlow with one evaluation per step, RF-Solver with two."""
    x = points(200)
    back = {
        solver: round_trip(x, SOURCE, TARGET, "inversion", steps=50, solver=solver)[1]
        for solver in ("euler", "fireflow", "rf-solver", "uni-inv")
    }
    gap = {solver: (b - x).square().sum(-1).mean().item() for solver, b in back.items()}
    assert gap["fireflow"] < gap["euler"] / 100 and gap["rf-solver"] < gap["euler"] / 100
    assert gap["uni-inv"] < gap["euler"] / 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zeta": -0.5}, r"^zeta must be a finite number >= 0 and <= 1, got -0\.5$"),
        ({"guidance": 500}, r"^guidance = 500 is over the limit of 100; beyond it"),
        ({"eta": 2.0}, r"^eta must be a finite number >= 0 and <= 1, got 2\.0$"),
        ({"omega": "5"}, r"^omega must be a real number"),
        ({"method": "uniedit", "pixels": 1}, r"^pixels must be True or False, got int$"),
        ({"solver": "fireflo"}, r"^unknown solver 'fireflo'; choose one of euler, heun, rk4, exact, midpoint"),
    ],
)
def test_bad_strengths_are_refused_in_one_line(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        edit(points(3), SOURCE, TARGET, **{"method": "flowalign", **kwargs})


def test_the_strengths_are_settings_with_their_official_defaults():
    s = Settings()
    assert (s.zeta, s.guidance, s.eta, s.omega) == (0.01, 1.0, 1.0, 5.0)
    assert set(flowtoy.METHODS) >= {"flowalign", "dvrf", "dds", "uniedit"}


def test_compare_adds_a_row_per_editor_after_flowedit_and_per_paper_solver():
    rows = {r["method"]: r for r in compare(n=300, steps=10, seed=2)}
    after = ["flowalign", "dvrf", "dds", "uniedit", "inversion (rf-solver)", "inversion (fireflow)"]
    assert list(rows)[6:] == [*after, "inversion (uni-inv)"]
    assert rows["flowalign"]["crossing"] == 0.0 and rows["dvrf"]["cost"] < rows["flowedit"]["cost"]


def test_the_command_line_takes_the_strengths_and_refuses_bad_ones(capsys):
    from flowtoy.cli import main

    assert main(["compare", "--n", "200", "--steps", "10", "--omega", "1", "--zeta", "0"]) == 0
    rows = {line[:21].strip(): line.split() for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert rows["flowalign"][1:3] == rows["flowedit"][1:3]  # zeta 0: FlowEdit's cost and crossing
    assert float(rows["uniedit"][1]) < 2 * float(rows["flowedit"][1])  # omega 1: editing by inversion
    assert main(["compare", "--zeta", "-1"]) == 2
    assert capsys.readouterr().err == "flowtoy: error: --zeta must be a finite number >= 0 and <= 1, got -1.0\n"
