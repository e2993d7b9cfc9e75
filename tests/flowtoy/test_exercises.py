"""flowtoy.exercises: verdicts that never raise at a student and never print the answer."""

import pytest
import torch

from flowtoy.exercises import NOT_YET, PASS, check_function, check_number


def double(z):
    return 2 * z


@pytest.mark.parametrize(
    "candidate, said",
    [
        (..., "no answer yet"),
        (lambda z: (_ for _ in ()).throw(NotImplementedError()), "is not written yet"),
        (lambda z: 1 / 0, "raised ZeroDivisionError: division by zero"),
        (lambda z: "two", "returned str"),
        (lambda z: z[:1], "returned shape (1,)"),
        (lambda z: 3 * z, "is off by up to 3"),
    ],
)
def test_a_wrong_function_gets_one_polite_line(candidate, said, capsys):
    assert check_function(candidate, double, {"case": (torch.tensor([1.0, 3.0]),)}, hint="HINT") is False
    out = capsys.readouterr().out
    assert out.startswith(NOT_YET) and said in out and out.count("\n") == 1 and "Traceback" not in out


def test_a_right_function_passes(capsys):
    assert check_function(lambda z: z + z, double, {"case": (torch.tensor([1.0]),)}, hint="")
    assert capsys.readouterr().out.startswith(PASS)


@pytest.mark.parametrize("answer", [None, ..., "7", 6, 8.5, float("nan"), True])
def test_a_wrong_number_never_shows_the_answer(answer, capsys):
    right = 7
    ok = check_number(answer, lambda a: a == right, too_low=lambda a: a < right, hint_low="up", hint_high="down")
    out = capsys.readouterr().out
    assert ok is False and out.startswith(NOT_YET) and "7" not in out.replace("'7'", "")


def test_a_right_number_passes(capsys):
    assert check_number(7, lambda a: a == 7, too_low=lambda a: a < 7, hint_low="", hint_high="")
    assert capsys.readouterr().out.startswith(PASS)


def test_a_number_reference_takes_a_tensor_or_a_number_answer(capsys):
    def reference(z):
        return (2 * z).sum().item()  # a Python float, as a checker's reference may end in .item()

    for right in (lambda z: (2 * z).sum(), lambda z: float((2 * z).sum())):  # a 0-D tensor, or a number
        assert check_function(right, reference, {"case": (torch.tensor([1.0, 3.0]),)}, hint="") is True
    assert check_function(lambda z: z.sum(), reference, {"case": (torch.tensor([1.0, 3.0]),)}, hint="H") is False
    assert "Traceback" not in capsys.readouterr().out
