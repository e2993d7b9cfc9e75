"""The argument checks of flowtoy's Python entry points, in one place.

Each check returns the value it accepts, converted to what the code below it uses, or raises one
line that names the argument, what it got and what it takes: ``ValueError`` for a value out of
range, ``TypeError`` for a value of the wrong kind. What is clearly meant is accepted: numpy and
torch integers as counts, numpy arrays, nested lists and integer tensors as points (converted to
a floating dtype).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from flowedit import check_count, check_generator

__all__ = [
    "short",
    "check_choice",
    "check_dtype",
    "check_generator",
    "check_int",
    "check_number",
    "check_points",
]


def _label(name: str, value: Any) -> str:
    """``--steps 10`` for a command-line option, ``steps = 10`` for a Python argument."""
    return f"{name} {value}" if name.startswith("--") else f"{name} = {value}"


def check_int(value: Any, name: str, low: int = 0, high: int | None = None, why: str = "") -> int:
    """An integer in ``[low, high]`` (Python, numpy or 0-d torch; not bool) as a Python int.

    Above ``high`` the message says ``why`` there is a limit (e.g. the run would take hours).
    """
    count = check_count(value, name, low)
    if high is not None and count > high:
        raise ValueError(f"{_label(name, count)} is over the limit of {high}" + (f"; {why}" if why else ""))
    return count


def check_number(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    why: str = "",
) -> float:
    """A finite real number (not bool) in ``[low, high]`` (ends excluded by ``open_low``/``open_high``) as a float.

    With ``why``, a value above ``high`` is "over the limit" and the message says ``why``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real | np.number | torch.Tensor):
        raise TypeError(f"{name} must be a real number, got {short(value)}")
    if torch.is_tensor(value) and (value.ndim > 0 or value.dtype == torch.bool or value.is_complex()):
        raise TypeError(f"{name} must be a real number, got {short(value)}")
    number = float(value)
    if why and high is not None and math.isfinite(number) and number > high:
        raise ValueError(f"{_label(name, f'{number:g}')} is over the limit of {high:g}; {why}")
    above = low is None or (number > low if open_low else number >= low)
    below = high is None or (number < high if open_high else number <= high)
    if not (math.isfinite(number) and above and below):
        takes = [f"{'>' if open_low else '>='} {low:g}"] if low is not None else []
        takes += [f"{'<' if open_high else '<='} {high:g}"] if high is not None else []
        raise ValueError(f"{name} must be a finite number{' ' + ' and '.join(takes) if takes else ''}, got {number!r}")
    return number


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {short(value)}; choose one of {', '.join(choices)}")
    return value


def check_dtype(dtype: Any, name: str = "dtype") -> torch.dtype:
    """A floating torch dtype (float64, float32, float16, bfloat16)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch dtype such as torch.float64 or torch.float32, got {dtype!r}")
    return dtype


def check_points(x: Any, name: str, dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Points ``(N, dim)``, ``N >= 1``, all finite, as a floating tensor.

    A torch tensor keeps its floating dtype and device; a numpy array its floating dtype; integer
    tensors and arrays and nested lists of numbers become ``dtype``.
    """
    if torch.is_tensor(x):
        points = x
    else:
        array = np.asarray(x) if not isinstance(x, str | bytes) else np.asarray(None, dtype=object)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{name} must be points of shape (N, {dim}): a tensor, array or nested list of numbers, got {short(x)}"
            )
        points = torch.from_numpy(np.ascontiguousarray(array))
    if points.dtype == torch.bool or points.is_complex():
        raise TypeError(f"{name} must hold real numbers, got {points.dtype}")
    if not points.is_floating_point():
        points = points.to(dtype)
    if points.ndim != 2 or points.shape[1] != dim or points.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, {dim}) with N >= 1, got {tuple(points.shape)}")
    finite = torch.isfinite(points).all(dim=1)
    if not bool(finite.all()):
        row = int((~finite).nonzero()[0, 0])
        raise ValueError(f"{name} contains NaN or inf (row {row}: {points[row].tolist()}); points must be finite")
    return points


def short(value: Any) -> str:
    """A short description of ``value``: its repr if small, else its type and shape (never a long dump)."""
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0:
        return f"{type(value).__name__} of shape {tuple(shape)} and dtype {getattr(value, 'dtype', None)}"
    text = repr(value) if isinstance(value, int | float | str | type(None)) else f"{value!r} ({type(value).__name__})"
    return text if len(text) <= 80 else text[:77] + "..."
