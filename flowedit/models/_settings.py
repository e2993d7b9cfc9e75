"""``EditSettings``: every setting of an image edit, declared once with its type, bounds and help."""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .._edit import check_schedule
from .._text import short

__all__ = ["EditSettings", "MAX_SEED", "METHODS"]

METHODS = ("flowedit", "inversion", "sdedit")
MAX_STEPS = 1000  # diffusers' flow schedulers are trained on 1000 timesteps: no finer grid exists
MAX_N_AVG = 64  # all draws go into one model call: activation memory grows with n_avg
MAX_GUIDANCE = 100.0
MAX_SEED = 2**63 - 1
FLOWEDIT_ONLY = {"n_min": 0, "n_avg": 1}  # settings only FlowEdit reads, and their values that change nothing


def _is_bool(value: Any) -> bool:
    """A Python, numpy or torch bool: never taken for a number."""
    return isinstance(value, bool) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


def _integer(value: Any) -> int | None:
    """``value`` as an ``int`` if it is an integer of any kind (Python, numpy, a one-element torch integer
    tensor: anything with ``__index__``), but not a bool; else None."""
    if _is_bool(value):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _setting(kind: type, help: str, low=None, high=None, choices=None, **default):
    """A field of :class:`EditSettings` with what checks it and documents it (CLI help, YAML keys)."""
    return field(metadata={"kind": kind, "help": help, "low": low, "high": high, "choices": choices}, **default)


@dataclass(frozen=True)
class EditSettings:
    """Everything that decides an edit besides the image and prompts (the paper's notation).

    Every setting is declared once here, with its type, bounds and help: :meth:`check`, the
    ``flowedit`` command-line options, the keys a batch file may override and the result records
    all derive from these fields.

    How a guidance scale enters depends on the family (``flowedit models``): for SD3 and SD3.5 a scale <= 1
    turns classifier-free guidance off (diffusers' convention: only the conditional half is evaluated);
    FLUX.1 [dev] feeds the scale to its guidance embedding as it is; FLUX.1 [schnell] has no guidance input.
    Defaults live with each family (:data:`~flowedit.models.FAMILIES`).
    """

    steps: int = _setting(int, "sampling steps T on the model's sigma grid", 1, MAX_STEPS)
    n_max: int = _setting(int, "steps that edit (<= steps); the first T - n_max are skipped", 0, MAX_STEPS)
    n_min: int = _setting(int, "final steps of plain target sampling (<= n_max; flowedit only)", 0, MAX_STEPS)
    n_avg: int = _setting(int, "noise draws averaged per step, all in one model call (flowedit only)", 1, MAX_N_AVG)
    src_guidance: float = _setting(
        float, "source guidance scale (SD3: <= 1 turns classifier-free guidance off)", 0.0, MAX_GUIDANCE
    )
    tar_guidance: float = _setting(float, "target guidance scale", 0.0, MAX_GUIDANCE)
    seed: int = _setting(int, "noise seed", 0, MAX_SEED)
    method: str = _setting(str, "edit method", choices=METHODS, default="flowedit")

    @property
    def integration_steps(self) -> int:
        """ODE steps the edit runs: ``n_max`` (twice that for inversion: up, then down)."""
        return 2 * self.n_max if self.method == "inversion" else self.n_max

    @classmethod
    def parse(cls, name: str, value: Any) -> Any:
        """``value`` as setting ``name`` wants it, a plain ``int``, ``float`` or ``str`` (numpy and torch integers
        are integers; an int for a float setting is fine; bools are refused), or ``ValueError``."""
        spec = {f.name: f.metadata for f in fields(cls)}.get(name)
        if spec is None:
            raise ValueError(
                f"unknown setting {short(name)}; the settings are {', '.join(f.name for f in fields(cls))}"
            )
        kind = spec["kind"]
        integer = _integer(value)
        if kind is int and integer is not None:
            return integer
        if kind is float and (integer is not None or (isinstance(value, numbers.Real) and not _is_bool(value))):
            return float(value)
        if kind is str and isinstance(value, str):
            return str(value)
        noun = {int: "an integer", float: "a number", str: "a string"}[kind]
        raise ValueError(f"{name} must be {noun}, got {short(value)}")

    def check(self) -> EditSettings:
        """Raise ``ValueError`` naming the setting, its value and the allowed range unless all are valid."""
        for f in fields(self):
            value, spec = self.parse(f.name, getattr(self, f.name)), f.metadata
            if spec["choices"] is not None and value not in spec["choices"]:
                raise ValueError(f"unknown {f.name} {short(value)}; choose one of {', '.join(spec['choices'])}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            low, high = spec["low"], spec["high"]
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{f.name} must lie in [{low}, {high}], got {short(value)}")
        check_schedule(self.steps, self.n_max, self.n_min, self.n_avg)
        if self.method != "flowedit":
            unused = [name for name, neutral in FLOWEDIT_ONLY.items() if getattr(self, name) != neutral]
            if unused:
                raise ValueError(
                    f"{' and '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} to method flowedit only, "
                    f"not {self.method}; leave {'it' if len(unused) == 1 else 'them'} out"
                )
        return self

    def replace(self, **options: Any) -> EditSettings:
        """These settings with every non-None option applied (types parsed), checked."""
        parsed = {name: self.parse(name, value) for name, value in options.items() if value is not None}
        return replace(self, **parsed).check()
