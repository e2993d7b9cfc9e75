"""A NaN or inf velocity stops every integrator with an error naming the branch, the step and ``t``.

On CPU the loop stops at the bad step; on an accelerator the checks stay on the device and are read
once per edit. That deferred path is exercised here on CPU by setting ``_DEFER_ON_CPU``.
"""

import math

import pytest
import torch

from flowedit import SOLVERS, edit_by_inversion, flowedit, integrate, linear_timesteps, sdedit, velocity_pair
from flowedit import _integrate as integrator

TS = linear_timesteps(10)  # ts[i] = 1 - i / 10


class Poisoned:
    """The velocity ``-z``, except that on the calls numbered in ``bad`` (from 0) one value is ``value``."""

    def __init__(self, *bad: int, value: float = math.nan):
        self.bad, self.value, self.calls = set(bad), value, 0

    def __call__(self, z: torch.Tensor, t: float) -> torch.Tensor:
        v = -z
        if self.calls in self.bad:
            v.view(-1)[-1] = self.value
        self.calls += 1
        return v


@pytest.fixture
def deferred(monkeypatch):
    """Check as on a GPU: keep each step's flag and read them all once, at the end of the edit."""
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", True)


def x0() -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 6, dtype=torch.float64).reshape(3, 2)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("method", sorted(SOLVERS))
def test_integrate_stops_at_the_step_whose_velocity_is_not_finite(method, value):
    evaluations = SOLVERS[method].evaluations
    velocity = Poisoned(3 * evaluations, value=value)  # the first stage of step 3, at t = ts[3]
    with pytest.raises(FloatingPointError, match=r"^velocity returned NaN or inf at step 3 \(t = 0\.7\)$"):
        integrate(x0(), velocity, TS, method=method)
    assert velocity.calls == 3 * evaluations + 1  # not one call more


@pytest.mark.parametrize(("method", "stage", "t"), [("heun", 1, "0.6"), ("rk4", 1, "0.65"), ("rk4", 3, "0.6")])
def test_a_later_stage_is_named_by_its_step_and_its_own_time(method, stage, t):
    velocity = Poisoned(3 * SOLVERS[method].evaluations + stage)
    with pytest.raises(FloatingPointError, match=rf"at step 3 \(t = {t}\)"):
        integrate(x0(), velocity, TS, method=method)


@pytest.mark.parametrize("method", sorted(SOLVERS))
def test_deferred_check_runs_to_the_end_and_names_the_first_bad_step(deferred, method):
    evaluations = SOLVERS[method].evaluations
    velocity = Poisoned(3 * evaluations, 6 * evaluations)
    with pytest.raises(FloatingPointError, match=r"velocity returned NaN or inf at step 3 \(t = 0\.7\)"):
        integrate(x0(), velocity, TS, method=method)
    assert velocity.calls == 10 * evaluations  # the loop ran to the end; one check after it


@pytest.mark.parametrize("defer", [False, True])
@pytest.mark.parametrize(("branch", "value"), [("source", math.nan), ("target", math.inf)])
def test_flowedit_names_the_branch_and_the_step(monkeypatch, defer, branch, value):
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", defer)
    source, target = Poisoned(), Poisoned()
    {"source": source, "target": target}[branch].bad = {3}  # n_max = 8 edits steps 2..9: the 4th is step 5
    source.value = target.value = value
    with pytest.raises(
        FloatingPointError, match=rf"^velocity pair \({branch}\) returned NaN or inf at step 5 \(t = 0\.5\)"
    ):
        flowedit(x0(), velocity_pair(source, target), TS, n_max=8, generator=torch.Generator().manual_seed(0))
    assert target.calls == (8 if defer else 4)


@pytest.mark.parametrize("defer", [False, True])
def test_flowedit_checks_the_n_min_sampling_steps(monkeypatch, defer):
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", defer)
    source, target = Poisoned(), Poisoned(6)  # steps 2..6 edit, 7..9 sample: target call 6 is step 8
    with pytest.raises(
        FloatingPointError, match=r"velocity pair \(target\) returned NaN or inf at step 8 \(t = 0\.2\)"
    ):
        flowedit(x0(), velocity_pair(source, target), TS, n_max=8, n_min=3, generator=torch.Generator().manual_seed(0))
    assert (source.calls, target.calls) == (5, 8 if defer else 7)


def test_deferred_flowedit_names_the_first_bad_evaluation_of_either_branch(deferred):
    source, target = Poisoned(3, 4), Poisoned(2, 6)  # target at step 4 comes before source at step 5
    with pytest.raises(
        FloatingPointError, match=r"velocity pair \(target\) returned NaN or inf at step 4 \(t = 0\.6\)"
    ):
        flowedit(x0(), velocity_pair(source, target), TS, n_max=8, n_min=3, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("defer", [False, True])
def test_edit_by_inversion_checks_the_sampling_phase(monkeypatch, defer):
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", defer)
    source, target = Poisoned(), Poisoned(2)  # n_max = 6 samples steps 4..9: the 3rd is step 6
    with pytest.raises(FloatingPointError, match=r"^target velocity returned NaN or inf at step 6 \(t = 0\.4\)"):
        edit_by_inversion(x0(), source, target, TS, n_max=6)
    assert (source.calls, target.calls) == (6, 6 if defer else 3)


def test_edit_by_inversion_checks_the_inversion_phase():
    source, target = Poisoned(1), Poisoned()  # inverting runs steps 10, 9, ... (t = ts[i] up to ts[i - 1])
    with pytest.raises(FloatingPointError, match=r"^source velocity returned NaN or inf at step 9 \(t = 0\.1\)"):
        edit_by_inversion(x0(), source, target, TS, n_max=6)
    assert target.calls == 0


def test_deferred_edit_by_inversion_checks_both_phases_once(deferred, monkeypatch):
    finished = []
    real = integrator.FiniteWatch.finish
    monkeypatch.setattr(integrator.FiniteWatch, "finish", lambda self: finished.append(1) or real(self))
    source, target = Poisoned(4), Poisoned(0)  # the inversion's step 6 comes before the sampling's step 4
    with pytest.raises(FloatingPointError, match=r"^source velocity returned NaN or inf at step 6 \(t = 0\.4\)"):
        edit_by_inversion(x0(), source, target, TS, n_max=6)
    assert (source.calls, target.calls, len(finished)) == (6, 6, 1)


@pytest.mark.parametrize("defer", [False, True])
def test_sdedit_names_the_step(monkeypatch, defer):
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", defer)
    target = Poisoned(2, value=-math.inf)  # Heun from step 4: calls 0, 1 are step 4, call 2 starts step 5
    with pytest.raises(FloatingPointError, match=r"^target velocity returned NaN or inf at step 5 \(t = 0\.5\)"):
        sdedit(x0(), target, TS, n_max=6, generator=torch.Generator().manual_seed(0), method="heun")
    assert target.calls == (12 if defer else 3)


def test_baseline_callbacks_index_ts():
    """``i`` indexes ``ts`` for every method (``t = ts[i]``), as in :func:`flowedit`."""
    seen = []
    record = lambda info: seen.append((info["phase"], info["i"], info["t"]))  # noqa: E731
    edit_by_inversion(x0(), Poisoned(), Poisoned(), TS, n_max=3, callback=record)
    sdedit(x0(), Poisoned(), TS, n_max=2, generator=torch.Generator().manual_seed(0), callback=record)
    assert [(phase, i) for phase, i, _ in seen] == [
        ("invert", 10),
        ("invert", 9),
        ("invert", 8),
        ("sample", 7),
        ("sample", 8),
        ("sample", 9),
        ("sample", 8),
        ("sample", 9),
    ]
    assert all(t == TS[i].item() for _, i, t in seen)


def test_finite_runs_give_the_same_bits_with_deferred_checks(monkeypatch):
    def run():
        pair = velocity_pair(lambda z, t: -z, lambda z, t: 1 - z)
        gen = torch.Generator().manual_seed(0)
        return [
            integrate(x0(), lambda z, t: z * t, TS, method="rk4"),
            flowedit(x0(), pair, TS, n_max=8, n_min=3, n_avg=2, generator=gen),
            edit_by_inversion(x0(), lambda z, t: -z, lambda z, t: 1 - z, TS, n_max=6, method="heun"),
            sdedit(x0(), lambda z, t: 1 - z, TS, n_max=6, generator=gen),
        ]

    eager = run()
    monkeypatch.setattr(integrator, "_DEFER_ON_CPU", True)
    for a, b in zip(eager, run(), strict=True):
        assert torch.equal(a, b)
