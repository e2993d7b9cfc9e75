"""Plumbing for the teaching notebooks' exercises: checkers that grade without giving the answer away.

A checker prints one line that starts with :data:`PASS` or :data:`NOT_YET` and returns whether the
answer passed. It never raises at the student and never prints the expected value: a blank answer
(``...``, ``None`` or a function that still raises ``NotImplementedError``) is "not answered yet", a
mistake in the student's own code is reported in one line (its exception type and message), and a
wrong answer gets the notebook's hint. The reference solutions live in ``notebooks/solutions/``; the
test suite runs every exercise both ways (blank, then the kept solution).

The teaching stays in the notebooks: each defines its own small checker (what is compared, the hint)
on top of :func:`check_function` and :func:`check_number`. Also here: :func:`parallelogram`, the
drawing of the FlowEdit paper's Fig. 2 for one source point (notebook 02), and :func:`strip_outputs`, the
JupyterLab save hook that keeps the tracked notebooks free of outputs.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["NOT_YET", "PASS", "check_function", "check_number", "parallelogram", "strip_outputs"]

PASS = "✔ Correct"
NOT_YET = "✘ Not yet"
_BLANK = "no answer yet: replace the `...` (or the `raise NotImplementedError` line) with yours, then run this cell"


def _say(passed: bool, message: str) -> bool:
    print(f"{PASS if passed else NOT_YET}: {message}")
    return passed


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def check_function(
    candidate: Any,
    reference: Callable[..., torch.Tensor],
    cases: Mapping[str, tuple],
    *,
    hint: str,
    rtol: float = 1e-9,
    atol: float = 1e-9,
) -> bool:
    """Call ``candidate(*args)`` and ``reference(*args)`` for each case and compare the tensors they return.

    A reference that returns a Python number is compared with a number (or a 0-D tensor) the same way.

    ``cases`` maps a case's description to its arguments (tensors are cloned for each call, so the
    candidate cannot change the reference's input). Passes when every case agrees to
    ``|got - expected| <= atol + rtol |expected|`` with the same shape. Prints one verdict line:
    not written yet, the candidate's own error, a wrong shape or dtype, or the largest difference and
    ``hint`` (what to look at), never the expected values.
    """
    if candidate is ... or candidate is None:
        return _say(False, _BLANK)
    if not callable(candidate):
        return _say(False, f"expected a function, got {type(candidate).__name__}")
    name = getattr(candidate, "__name__", "your function")
    for case, args in cases.items():
        expected = reference(*(a.clone() if torch.is_tensor(a) else a for a in args))
        try:
            got = candidate(*(a.clone() if torch.is_tensor(a) else a for a in args))
        except NotImplementedError:
            return _say(False, f"{name} is not written yet: replace its `raise NotImplementedError` line")
        except Exception as error:  # the student's code failed: one line, no traceback
            return _say(False, f"{name} raised {_one_line(error)} (case: {case})")
        if isinstance(expected, numbers.Real):  # a number: compared as a 0-D tensor, whichever way it comes back
            expected = torch.tensor(float(expected))
            if isinstance(got, numbers.Real) and not isinstance(got, bool):
                got = torch.tensor(float(got))
        if not torch.is_tensor(got):
            return _say(False, f"{name} returned {type(got).__name__} (case: {case}); it should return a tensor")
        if got.shape != expected.shape:
            return _say(
                False, f"{name} returned shape {tuple(got.shape)} (case: {case}); expected {tuple(expected.shape)}"
            )
        if not torch.isfinite(got).all():
            return _say(False, f"{name} returned NaN or infinite values (case: {case}). {hint}")
        gap = (got.double() - expected.double()).abs()
        if not (gap <= atol + rtol * expected.double().abs()).all():
            return _say(False, f"{name} is off by up to {gap.max().item():.3g} (case: {case}). {hint}")
    return _say(True, f"{name} agrees with the reference on {len(cases)} case(s): " + "; ".join(cases))


def check_number(
    answer: Any,
    is_right: Callable[[float], bool],
    *,
    too_low: Callable[[float], bool],
    hint_low: str | Callable[[float], str],
    hint_high: str | Callable[[float], str],
    integer: bool = False,
    low: float = -math.inf,
    high: float = math.inf,
    right: str = "",
) -> bool:
    """Grade a number: blank, not a number, out of ``[low, high]``, right, or too low / too high with a hint.

    ``is_right(answer)`` decides; ``too_low(answer)`` picks ``hint_low`` or ``hint_high`` for a wrong one (a
    string, or a function of the answer that returns one, e.g. to say what the answer gives).
    ``right`` is added to the verdict of a right answer (what it means). The hints must not contain the
    answer: they say which way to look and why.
    """
    if answer is ... or answer is None:
        return _say(False, _BLANK)
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real) or not math.isfinite(answer):
        return _say(False, f"expected a number, got {answer!r}")
    if integer and answer != int(answer):
        return _say(False, f"expected a whole number, got {answer!r}")
    if not low <= answer <= high:
        return _say(False, f"{answer!r} is outside [{low:g}, {high:g}], where the answer lies")
    try:
        if is_right(answer):
            return _say(True, f"{answer!r}. {right}".rstrip())
        low_side = too_low(answer)
        hint = hint_low if low_side else hint_high
        hint = hint(answer) if callable(hint) else hint
        return _say(False, f"{answer!r} is too {'low' if low_side else 'high'}: {hint}")
    except Exception as error:  # a checker that cannot grade this value says so in one line
        return _say(False, f"could not grade {answer!r}: {_one_line(error)}")


def parallelogram(ax, x, z_src, z_tar, edit, delta, t: float, *, scale: float = 1.0) -> None:
    """Draw the FlowEdit paper's Fig. 2 for one source point on ``ax`` (2-D, float tensors of shape (2,)).

    ``x`` the source point, ``z_src`` its noisy copy ``(1 - t) x + t eps``, ``edit`` the direct path's
    point ``Z^FE_t``, ``z_tar = z_src + Z^FE_t - x`` its noisy target copy (the four corners of the
    parallelogram), and ``delta = V_tar(z_tar, t) - V_src(z_src, t)`` drawn as an arrow at ``edit``
    (times ``scale``), the direction in which the direct path moves.
    """
    corners = torch.stack([x, z_src, z_tar, edit, x]).numpy()  # (5, 2): closed outline
    ax.fill(corners[:, 0], corners[:, 1], color="0.9", zorder=0)
    ax.plot(corners[:2, 0], corners[:2, 1], color="tab:blue", lw=1.2, ls="--")
    ax.plot(corners[2:4, 0], corners[2:4, 1], color="tab:orange", lw=1.2, ls="--")
    ax.plot(corners[[0, 3], 0], corners[[0, 3], 1], color="black", lw=1.6)
    ax.plot(corners[1:3, 0], corners[1:3, 1], color="0.5", lw=1.0)
    for point, color, label in [
        (x, "tab:blue", "$x^{src}$"),
        (z_src, "tab:blue", "$Z^{src}_t$"),
        (z_tar, "tab:orange", "$Z^{tar}_t$"),
        (edit, "black", "$Z^{FE}_t$"),
    ]:
        ax.plot(*point.numpy(), "o", color=color, ms=6)
        ax.annotate(label, point.numpy(), textcoords="offset points", xytext=(6, 6), fontsize=12, color=color)
    ax.annotate(
        "",
        (edit + scale * delta).numpy(),
        edit.numpy(),
        arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 2},
    )
    ax.set_title(f"t = {t:.2f}", fontsize=12)


def strip_outputs(model: dict, path: str = "", **kwargs: Any) -> None:
    """JupyterLab's pre-save hook (``scripts/notebooks`` installs it): save the course notebooks without outputs.

    Applies to notebooks named like the course's (``NN_name.ipynb``) at the top of the served folder: their code
    (a student's answers included) is saved, their outputs and execution counts are not, so the tracked files stay
    as committed (rendered copies with outputs: ``docs/notebooks/``). Any other file is saved as it is.
    """
    if model.get("type") != "notebook" or not re.fullmatch(r"\d\d_[^/]+\.ipynb", path.strip("/")):
        return
    for cell in model["content"]["cells"]:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
