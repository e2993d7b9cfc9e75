"""Regime maps: when does editing by inversion intermix the modes, and when does FlowEdit?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from . import metrics, paper
from ._checks import check_choice
from ._edit import METHODS, edit
from ._settings import DEFAULT, check_setting

__all__ = ["Sweep", "sweep"]


@dataclass(frozen=True)
class Sweep:
    """Metrics of each method over a grid of step counts (columns) and source-mode weights (rows).

    ``crossing[method]`` and ``cost[method]`` are arrays of shape ``(len(weights), len(steps))``;
    ``weights`` holds the weight of the first (lower-left) source mode, the target keeps equal weights.
    """

    methods: tuple[str, ...]
    steps: tuple[int, ...]
    weights: tuple[float, ...]
    std: float
    n: int
    crossing: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]


def sweep(
    steps: Sequence[int] = (2, 5, 10, 25, 50),
    weights: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
    methods: Sequence[str] = ("inversion", "flowedit"),
    *,
    n: int = DEFAULT.n,
    std: float = DEFAULT.std,
    seed: int = DEFAULT.seed,
    progress: bool = True,
) -> Sweep:
    """Edit ``n`` points of the paper's source (first-mode weight ``w``) to its target, for every ``(w, steps)``.

    The source weights move from equal to lopsided while the target stays equal: a method whose
    output matches the target distribution must then send part of the heavier mode to the other
    target mode. Coarse Euler inversion also crosses at equal weights. Shows a progress bar.
    """
    n, std, seed = check_setting("n", n), check_setting("std", std), check_setting("seed", seed)
    steps = [check_setting("steps", s) for s in steps]
    weights = [check_setting("weight", w, "weights") for w in weights]  # the first mode's, in (0, 1)
    methods = [check_choice(m, "method", METHODS) for m in methods]
    if not (steps and weights and methods):
        raise ValueError("steps, weights and methods must each hold at least one value")
    shape = (len(weights), len(steps))
    crossing = {m: np.zeros(shape) for m in methods}
    cost = {m: np.zeros(shape) for m in methods}
    target = paper.target(std)
    cells = [(i, j) for i in range(len(weights)) for j in range(len(steps))]
    for i, j in tqdm(cells, desc="sweep", disable=not progress, unit="cell"):
        source = paper.source(std, [weights[i], 1 - weights[i]])
        x = source.sample(n, torch.Generator().manual_seed(seed))
        for m in methods:
            y = edit(x, source, target, m, steps=steps[j], generator=torch.Generator().manual_seed(seed + 1))
            crossing[m][i, j] = metrics.crossing_fraction(x, y, source, target)
            cost[m][i, j] = metrics.transport_cost(x, y)
    return Sweep(tuple(methods), tuple(steps), tuple(weights), std, n, crossing, cost)
