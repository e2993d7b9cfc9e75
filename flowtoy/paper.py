"""The 2-D experiment of FlowEdit (Kulikov et al., 2025, Fig. 3): two source modes, two target modes.

The paper gives the means only: source modes at ``(-15/sqrt2, -15/sqrt2)`` and ``(15/sqrt2, 15/sqrt2)``,
target modes at ``(-15, 0)`` and ``(0, 15)``. It states no weights, spreads, step counts or
``n_avg``; here the defaults are equal weights and isotropic standard deviation 1, and every one of
them is a parameter. Each source mode's nearest target mode is the one on its own side of the
line ``x + y = 0``: lower-left goes to ``(-15, 0)``, upper-right to ``(0, 15)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._mixture import GaussianMixture
from ._settings import check_setting

__all__ = ["SOURCE_MEANS", "TARGET_MEANS", "source", "target"]

_R = 15 / math.sqrt(2)
SOURCE_MEANS = ((-_R, -_R), (_R, _R))
TARGET_MEANS = ((-15.0, 0.0), (0.0, 15.0))


def _preset(means, std: float, weights: Sequence[float] | None) -> GaussianMixture:
    std = check_setting("std", std)
    return GaussianMixture(torch.tensor(means, dtype=torch.float64), std**2, weights)


def source(std: float = 1.0, weights: Sequence[float] | None = None) -> GaussianMixture:
    """The paper's source mixture; ``std`` is each mode's isotropic standard deviation."""
    return _preset(SOURCE_MEANS, std, weights)


def target(std: float = 1.0, weights: Sequence[float] | None = None) -> GaussianMixture:
    """The paper's target mixture; ``std`` is each mode's isotropic standard deviation."""
    return _preset(TARGET_MEANS, std, weights)
