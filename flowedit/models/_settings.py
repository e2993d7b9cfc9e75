"""``EditSettings``: every setting of an image edit, declared once with its type, bounds and help."""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .._edit import check_schedule
from .._solvers import PAPER_SOLVERS
from .._text import short

__all__ = [
    "ALPHA",
    "MASKED",
    "check_local_edit",
    "EditSettings",
    "MAX_SEED",
    "METHODS",
    "METHOD_DEFAULTS",
    "SOLVERS",
    "STRENGTHS",
]

METHODS = ("flowedit", "inversion", "sdedit", "flowalign", "dvrf", "dds", "uniedit")
MASKED = ("flowedit", "flowalign", "dvrf", "dds")  # methods whose update a local-edit mask scales
SOLVERS = ("euler", *PAPER_SOLVERS)  # inversion's ODE solvers (flowedit's core)
MAX_STEPS = 1000  # diffusers' flow schedulers are trained on 1000 timesteps: no finer grid exists
MAX_N_AVG = 64  # all draws go into one model call: activation memory grows with n_avg
MAX_GUIDANCE = 100.0
MAX_SEED = 2**63 - 1
FLOWEDIT_ONLY = {"n_min": 0, "n_avg": 1}  # settings only FlowEdit reads, and their values that change nothing
# The strengths of the editors after FlowEdit: the method that reads each. Unset (None) means the method's official
# default (METHOD_DEFAULTS); a strength set for another method is refused.
STRENGTHS = {"zeta": ("flowalign",), "eta": ("dvrf",), "omega": ("uniedit",), "solver": ("inversion",)}
# What choosing a method sets, where the edit does not give it: each method's official settings (the paper's code).
# FlowAlign: FlowAlign/FlowAlign run_edit.py + SD3FlowAlign (NFE 33 from the first step, the source unguided, the
# target guided with w = 7.5 around the source prompt, zeta 0.01). DVRF: its official models/DVRF.py, DVRF_SD3's own
# defaults on SD3 (T = 50, source guidance 6, target 16.5, every step edits); its eta defaults to 0 there and the
# exp.yaml that edit.py reads is not published (edit.py, as published, passes DVRF_SD3 one argument too many), so
# eta 1 is this project's choice (c_t grows to FlowEdit's t at the last step; flowtoy's default too). DDS: DVRF's
# c_t = 0 end with DVRF's settings. UniEdit-Flow: DSL-Lab/UniEdit-Flow demo_edit.py (15 steps, alpha 0.6: the last
# floor(0.6 * 15) = 9 are inverted and edited, guidance 1 both, omega 5). Inversion: Euler (this project's default).
# The official values are SD3's; on other families they are a starting point, not tuned there.
METHOD_DEFAULTS = {
    "flowalign": {"steps": 33, "src_guidance": 1.0, "tar_guidance": 7.5, "zeta": 0.01},
    "dvrf": {"steps": 50, "src_guidance": 6.0, "tar_guidance": 16.5, "eta": 1.0},
    "dds": {"steps": 50, "src_guidance": 6.0, "tar_guidance": 16.5},
    "uniedit": {"steps": 15, "src_guidance": 1.0, "tar_guidance": 1.0, "omega": 5.0},
    "inversion": {"solver": "euler"},
}
# The fraction of the steps that edit where a method sets n_max: n_max = floor(ALPHA * steps) (UniEdit's alpha).
ALPHA = {"flowalign": 1.0, "dvrf": 1.0, "dds": 1.0, "uniedit": 0.6}


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


def check_local_edit(media: str, method: str, mask: bool, feather: Any, family: str = "") -> float:
    """The rule of a local edit, in one place: a mask is for image families and the methods in :data:`MASKED`;
    ``feather`` (pixels of soft edge, finite, in [0, MAX_FEATHER]) needs a mask. Returns ``feather`` as a float;
    one ``ValueError`` line otherwise (``family`` names the model in it)."""
    from ..media.masks import check_feather

    feather = check_feather(feather)
    if not mask:
        if feather:
            raise ValueError(f"feather {feather:g} softens a mask's edge, but no mask is given; give a mask or drop it")
        return 0.0
    if media != "image":
        raise ValueError(f"a mask applies to image families; {family or 'a video model'} edits videos")
    if method not in MASKED:
        raise ValueError(f"a mask applies to methods {', '.join(MASKED)} only, not {method}")
    return float(feather)


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
    method: str = _setting(
        str,
        "edit method: flowedit, inversion, sdedit, or an editor after FlowEdit (flowalign, dvrf, dds, uniedit); "
        "choosing one sets its official steps, n_max, guidance and strength unless given",
        choices=METHODS,
        default="flowedit",
    )
    zeta: float | None = _setting(
        float, "flowalign: weight of the x0hat term, once per step (official 0.01)", 0.0, 10.0, default=None
    )
    eta: float | None = _setting(
        float, "dvrf: scale of the shift c_t = eta (i / T) t, 1 ends at FlowEdit (official 1)", 0.0, 1.0, default=None
    )
    omega: float | None = _setting(
        float, "uniedit: strength of the masked delta-velocity correction (official 5)", 0.0, 100.0, default=None
    )
    solver: str | None = _setting(
        str, "inversion: ODE solver up and down (default euler)", choices=SOLVERS, default=None
    )

    @property
    def integration_steps(self) -> int:
        """ODE steps the edit runs: ``n_max`` (twice that for inversion and uniedit: up, then down)."""
        return 2 * self.n_max if self.method in ("inversion", "uniedit") else self.n_max

    @property
    def strengths(self) -> dict[str, Any]:
        """The method's own strengths as it runs them (an unset one at its official default)."""
        own = {name: getattr(self, name) for name, methods in STRENGTHS.items() if self.method in methods}
        return {name: METHOD_DEFAULTS[self.method][name] if v is None else v for name, v in own.items()}

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
            if f.name in STRENGTHS and getattr(self, f.name) is None:
                continue  # unset: the method's official default
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
        for name, methods in STRENGTHS.items():
            if getattr(self, name) is not None and self.method not in methods:
                raise ValueError(
                    f"{name} {short(getattr(self, name))} applies to method {' or '.join(methods)} only, "
                    f"not {self.method}; leave it out"
                )
        return self

    def replace(self, **options: Any) -> EditSettings:
        """These settings with every non-None option applied (types parsed), checked. A new ``method`` brings its
        official settings (:data:`METHOD_DEFAULTS`) for those not given, and drops the old method's strengths."""
        parsed = {name: self.parse(name, value) for name, value in options.items() if value is not None}
        method = parsed.get("method", self.method)
        given = set(parsed)
        if method != self.method:
            parsed = {**dict.fromkeys(STRENGTHS), **METHOD_DEFAULTS.get(method, {}), **parsed}
            if method in ALPHA and "n_max" not in given:
                parsed["n_max"] = math.floor(ALPHA[method] * parsed["steps"])
        return replace(self, **parsed).check()
