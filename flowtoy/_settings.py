"""flowtoy's settings, declared once: each one's type, bounds, help and default.

:class:`Settings` is the single source: the ``flowtoy`` command line builds its options from it
(type, help, default, limits), :func:`flowtoy.explore` its sliders, and :func:`flowtoy.edit` and
the other Python entry points take their defaults from it and check their arguments against the
same bounds (:func:`check_setting`), so ``flowtoy.edit(..., steps=10**9)`` is refused at once, in
one line, as ``flowtoy compare --steps 1000000000`` is. The upper bounds are sizes beyond which a
run would take hours or exhaust memory.

The ``n_max`` rule, the same in every entry point: unset (``None``) means ``n_max = T = steps``,
an edit along the whole grid from ``t = 1``. A command that shows a partial edit names its
``n_max`` as its own default and prints it (``flowtoy digits``: 40 of 50 steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ._checks import check_int, check_number

__all__ = ["DEFAULT", "MAX_WORK", "Setting", "Settings", "check_setting", "check_work", "setting"]

SIZE = "a larger run would take hours or run out of memory"


@dataclass(frozen=True)
class Setting:
    """The metadata of one setting: ``kind`` (int or float), ``help``, bounds and the explorer's slider.

    Values lie in ``[low, high]`` (``low`` excluded if ``open_low``, ``high`` if ``open_high``);
    ``why`` says why ``high`` is a limit. ``slider`` is the explorer's ``(low, high, step)`` when the
    setting is one of its controls; ``optional`` allows None (``n_max``: T).
    """

    kind: type
    help: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    why: str = SIZE
    slider: tuple[float, float, float] | None = None
    optional: bool = False

    def check(self, value: Any, name: str) -> Any:
        """``value`` converted to ``kind`` if it is within bounds, else a one-line error naming ``name``."""
        if value is None and self.optional:
            return None
        if self.kind is int:
            return check_int(value, name, int(self.low), None if self.high is None else int(self.high), self.why)
        return check_number(
            value, name, self.low, self.high, open_low=self.open_low, open_high=self.open_high, why=self.why
        )


def _setting(default: Any, kind: type, help: str, **bounds: Any) -> Any:
    return field(default=default, metadata={"setting": Setting(kind, help, **bounds)})


@dataclass(frozen=True)
class Settings:
    """Every setting of the toy experiment, with its default; constructing one checks them all.

    ``n`` counts points (the CLI's ``figure3`` and ``animate`` take points per mode: at most half
    of ``n``'s bound each); ``steps`` is ``T``, the uniform grid's step count; ``n_max`` None means T.
    """

    n: int = _setting(2000, int, "source points", low=1, high=2_000_000, slider=(50, 3000, 50))
    std: float = _setting(
        1.0,
        float,
        "standard deviation of every mode (not stated in the paper)",
        low=0.0,
        open_low=True,
        high=1000.0,
        why="spreads beyond it overflow the toy's densities; the paper's modes lie 15 to 21 apart",
        slider=(0.25, 4.0, 0.25),
    )
    weight: float = _setting(
        0.5,
        float,
        "weight of the first source mode (the others keep their proportions)",
        low=0.0,
        high=1.0,
        open_low=True,
        open_high=True,
        why="",
        slider=(0.05, 0.95, 0.05),
    )
    steps: int = _setting(
        50, int, "Euler steps T on a uniform grid from t=1 to 0", low=1, high=10_000, slider=(1, 100, 1)
    )
    n_max: int | None = _setting(
        None,
        int,
        "steps that edit (<= steps); inversion and SDEdit start at t = n_max/T (default: T)",
        low=0,
        high=10_000,
        optional=True,
        slider=(1, 100, 1),
    )
    n_min: int = _setting(0, int, "final steps of plain target sampling (FlowEdit; <= n_max)", low=0, high=10_000)
    n_avg: int = _setting(1, int, "FlowEdit noise draws averaged per step", low=1, high=1_000, slider=(1, 64, 1))
    nodes: int = _setting(10, int, "Gauss-Hermite nodes per dimension of flowedit-mean", low=1, high=1_000)
    # The strengths of the editors after FlowEdit (flowedit.flowalign, dvrf, uniedit): official defaults
    # except guidance, which is 1 here because the toy's target velocity is exact (no prompt to amplify).
    zeta: float = _setting(
        0.01, float, "FlowAlign's x0hat weight per step (official 0.01)", low=0.0, high=1.0, why="a pull of 1 per step"
    )
    guidance: float = _setting(
        1.0,
        float,
        "FlowAlign's target guidance w, the source as negative: v_src + w (v_tar - v_src) (1: exact target)",
        low=0.0,
        high=100.0,
        why="beyond it the target velocity is extrapolated a hundredfold",
    )
    eta: float = _setting(
        1.0, float, "DVRF's shift scale: c_t = eta (i / T) t (official 1; dds is eta 0)", low=0.0, high=1.0, why=""
    )
    omega: float = _setting(
        5.0, float, "UniEdit-Flow's strength omega (official 5)", low=0.0, high=100.0, why="a step 100 times dt"
    )
    seed: int = _setting(
        0,
        int,
        "seed of the source sample and of all noise (the edits use seed + 1)",
        low=0,
        high=2**63 - 1,
        why="seeds are integers from 0 to 2**63 - 1",
        slider=(0, 999, 1),
    )
    pairs: int = _setting(60, int, "source-to-edit lines drawn in the edit panels", low=0, high=100_000)
    grid: int = _setting(25, int, "arrows per side of a velocity-field plot", low=2, high=1_000)
    dpi: int = _setting(110, int, "image resolution", low=1, high=1_200)
    fps: int = _setting(12, int, "frames per second", low=1, high=100)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["setting"].check(getattr(self, f.name), f.name))
        if self.n_max is not None and self.n_max > self.steps:
            raise ValueError(f"n_max = {self.n_max} exceeds the number of steps ({self.steps}); use n_max <= steps")
        if self.n_min > (self.steps if self.n_max is None else self.n_max):
            raise ValueError(f"n_min = {self.n_min} exceeds n_max; need 0 <= n_min <= n_max")

    @property
    def edit_steps(self) -> int:
        """``n_max``, or ``T`` when unset."""
        return self.steps if self.n_max is None else self.n_max


DEFAULT = Settings()
MAX_WORK = 2_000_000_000  # numbers an edit moves in all (steps x draws x points x dimension): a minute or two here


def check_work(steps: int, n_avg: int, points: int, dim: int) -> None:
    """Refuse an edit whose sizes are each within their bounds but whose product would run for hours or fill the
    memory: ``steps x n_avg x points x dim`` numbers moved in all, at most :data:`MAX_WORK`."""
    work = steps * n_avg * points * dim
    if work > MAX_WORK:
        raise ValueError(
            f"steps x n_avg x points x dimension = {steps} x {n_avg} x {points} x {dim} = {work:.3g} is over "
            f"{MAX_WORK:.0e}: an edit that large would run for hours or run out of memory; make one of them smaller"
        )
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def setting(name: str) -> Setting:
    """The metadata of the setting ``name``."""
    return _FIELDS[name].metadata["setting"]


def check_setting(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` checked against the bounds of setting ``name``; errors call it ``label`` (default: ``name``)."""
    return setting(name).check(value, label or name)
