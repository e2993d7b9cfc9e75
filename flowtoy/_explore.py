"""``flowtoy.explore``: the paper's 2-D experiment as an interactive view, recomputed on every change.

The velocities are closed form, so a whole edit of a few hundred points takes milliseconds: every setting
can be a slider. Each panel shows one method's pairing ``x_i -> y_i`` (a line per point, coloured by the
source mode of ``x_i``; points that cross to another mode ringed in red) and states its crossing fraction and
transport cost. The methods are checkboxes, one per method of ``flowtoy.edit`` (``METHODS``: a method added there
appears here). The ``time`` slider scrubs through the edits without recomputing them: each panel then shows the
points at that moment of its edit (for inversion, the way up to noise and back down) with, for a few points,
the step's velocity as an arrow (FlowEdit: ``V_tar - V_src``) and FlowEdit's noisy source copies ``Z_src``. "inversion" is Euler on the
same grid as FlowEdit (``T = steps`` uniform steps, up to ``t = n_max / T`` and back down), the
paper's baseline; "flowedit" is Algorithm S1 with ``n_max`` and ``n_avg``.

Needs ipywidgets (the ``notebooks`` extra). In a notebook, make ``flowtoy.explore()`` the last line of a
cell. From code, set a control's ``value`` and read :attr:`Explorer.metrics`::

    view = flowtoy.explore()
    view.controls["weight"].value = 0.8
    view.metrics["flowedit"]["crossing"]
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from . import metrics, paper
from ._edit import METHODS, edit
from ._mixture import GaussianMixture
from ._settings import DEFAULT, setting

__all__ = ["DEFAULTS", "EXPLORER_METHODS", "Explorer", "explore"]

EXPLORER_METHODS = METHODS  # every method of flowtoy.edit, so that a new one shows up here too
# The sliders: the settings of flowtoy.Settings that have a slider range, with their labels. The
# explorer's own defaults: 10 steps (Euler inversion intermixes the modes there) and 500 points;
# n_max follows the rule of every entry point (unset: T).
_LABELS = {"weight": "source weight", "std": "std", "steps": "steps T", "n_max": "n_max", "n_avg": "n_avg"}
_LABELS.update(seed="seed", n="points N")
DEFAULTS = {name: getattr(DEFAULT, name) for name in _LABELS} | {"steps": 10, "n": 500}
DEFAULTS["n_max"] = DEFAULTS["steps"]
DEFAULT_METHODS = ("inversion", "flowedit")
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
DPI = 100  # the PNG's resolution: sharp at the widget's size
ARROWS = 8  # points whose velocity (and, for FlowEdit, noisy copy) the time slider shows
ARROW_SCALE = 0.3  # arrow length per unit of speed |dz/dt|


def _widgets():
    try:
        import ipywidgets
    except ImportError as error:  # pragma: no cover - the pinned environment has it
        raise ImportError("flowtoy.explore needs ipywidgets: pip install 'flowtoy-flowedit[notebooks]'") from error
    return ipywidgets


def _scaled(mixture: GaussianMixture, weight: float | None, std: float) -> GaussianMixture:
    """``mixture`` with standard deviations times ``std`` and, if given, its first weight set to ``weight``.

    Built from the eigen-decomposition, so an isotropic or diagonal mixture stays one (and keeps its fast
    kernels): the explorer's numbers are those of ``flowtoy.edit`` on the same mixture, to the bit.
    """
    weights = mixture.weights
    if weight is not None and mixture.n_components > 1:
        rest = weights[1:] / weights[1:].sum()
        weights = torch.cat([weights.new_tensor([weight]), (1 - weight) * rest])
    return GaussianMixture.from_eigen(mixture.means, mixture.lam * std**2, mixture.U, weights.log())


class Explorer:
    """An interactive view of editing ``source`` -> ``target`` by several methods (see :func:`explore`).

    Attributes:
        controls: the widgets by setting name: ``weight``, ``std``, ``steps``, ``n_max``, ``n_avg``, ``seed``,
            ``n`` (sliders) and ``methods`` (a multiple choice). Setting a ``value`` recomputes and redraws.
        metrics: the latest numbers per shown method: ``crossing`` (fraction of points that land nearest a
            target mode other than their source mode's nearest), ``cost`` (mean ``||y - x||^2``), ``log_p``
            (mean exact target log-likelihood) and ``seconds`` (time of the edit).
        source, target: the mixtures of the latest computation; ``x`` (N, 2) and ``edits`` (method -> (N, 2)).
        figure: the :class:`~matplotlib.figure.Figure` drawn (one panel per method); ``image``: the widget that
            shows it as PNG; ``widget``: the whole view.
        seconds: time of the latest recompute and redraw.
    """

    def __init__(self, source: GaussianMixture | None, target: GaussianMixture | None, settings: dict[str, Any]):
        widgets = _widgets()
        if (source is None) != (target is None):
            raise ValueError("give both source and target mixtures, or neither (the paper's set-up)")
        if source is not None and (source.dim != 2 or target.dim != 2):
            raise ValueError(f"explore draws 2-D points; got a {source.dim}-D source and a {target.dim}-D target")
        self._given = (source, target)
        unknown = sorted(set(settings) - set(DEFAULTS) - {"methods"})
        if unknown:
            raise ValueError(
                f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join([*DEFAULTS, 'methods'])}"
            )
        values = {**DEFAULTS, **settings}
        if settings.get("n_max") is None:  # the rule of every entry point: n_max unset means T
            values["n_max"] = values["steps"]
        methods = tuple(values.pop("methods", DEFAULT_METHODS))
        bad = [m for m in methods if m not in EXPLORER_METHODS]
        if bad or not methods:
            raise ValueError(f"methods must be some of {', '.join(EXPLORER_METHODS)}; got {methods!r}")
        self.controls: dict[str, Any] = {}
        for name, label in _LABELS.items():
            meta = setting(name)
            low, high, step = meta.slider
            value = meta.check(values[name], name)  # the type and bounds every entry point checks
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low}, {high}] (the slider's range), got {value!r}")
            cls = widgets.FloatSlider if meta.kind is float else widgets.IntSlider
            self.controls[name] = cls(
                value=value,
                min=low,
                max=high,
                step=step,
                description=label,
                continuous_update=False,
                style={"description_width": "initial"},
            )
        if values["n_max"] > values["steps"]:
            raise ValueError(f"n_max must be <= steps, got n_max={values['n_max']} with steps={values['steps']}")
        self.controls["n_max"].max = values["steps"]
        self.controls["methods"] = widgets.SelectMultiple(
            options=EXPLORER_METHODS, value=methods, description="methods", rows=len(EXPLORER_METHODS)
        )  # the source of truth for the checkboxes below (set its value from code)
        self._syncing = False
        self._boxes = {m: widgets.Checkbox(value=m in methods, description=m, indent=False) for m in EXPLORER_METHODS}
        for box in self._boxes.values():
            box.observe(self._ticked, names="value")
        self.controls["time"] = widgets.FloatSlider(
            value=1.0,
            min=0.0,
            max=1.0,
            step=0.02,
            description="time: scrub the edit (0 start, 1 end)",
            continuous_update=True,
            style={"description_width": "initial"},
            layout={"width": "420px"},
        )
        self.metrics: dict[str, dict[str, float]] = {}
        self.edits: dict[str, torch.Tensor] = {}
        self.paths: dict[str, list[dict[str, Any]]] = {}
        self.figure = Figure()
        self.image = widgets.Image(format="png")
        self._status = widgets.HTML()
        sliders = [self.controls[name] for name in _LABELS]
        methods_box = widgets.VBox([widgets.HTML("<b>methods</b> (tick to show)"), *self._boxes.values()])
        controls = widgets.VBox([*sliders, methods_box, self._status])
        self.widget = widgets.HBox([controls, widgets.VBox([self.controls["time"], self.image])])
        self.update()
        for control in self.controls.values():
            control.observe(self._changed, names="value")

    def _ticked(self, change: dict) -> None:
        if self._syncing:  # the boxes follow a change of controls["methods"]: nothing more to do
            return
        ticked = tuple(m for m, box in self._boxes.items() if box.value)
        if ticked and ticked != tuple(self.controls["methods"].value):
            self.controls["methods"].value = ticked
        elif not ticked:  # at least one method stays shown
            change["owner"].value = True

    def _changed(self, change: dict) -> None:
        if change["owner"] is self.controls["time"]:
            tic = time.perf_counter()
            self._draw(self.settings())  # scrubbing redraws the edits already computed
            self.seconds = time.perf_counter() - tic
            self._status.value = f"drawn in {self.seconds:.2f} s"
            return
        if change["owner"] is self.controls["methods"]:
            self._syncing = True
            try:
                for m, box in self._boxes.items():
                    box.value = m in change["new"]
            finally:
                self._syncing = False
        if change["owner"] is self.controls["steps"]:
            n_max = self.controls["n_max"]
            before = n_max.value
            n_max.max = change["new"]  # may clamp n_max's value, whose own observer then updates
            if before == change["old"] and n_max.value != change["new"]:
                n_max.value = change["new"]  # an edit over all steps stays one when T changes
            if n_max.value != before:
                return  # updated by n_max's observer
        self.update()

    def settings(self) -> dict[str, Any]:
        """The current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self) -> None:
        """Recompute every shown method's edit and metrics, and redraw."""
        tic = time.perf_counter()
        s = self.settings()
        given_source, given_target = self._given
        self.source = _scaled(given_source or paper.source(), s["weight"], s["std"])
        self.target = _scaled(given_target or paper.target(), None, s["std"])
        self.x = self.source.sample(s["n"], generator=torch.Generator().manual_seed(s["seed"]))
        self.edits, self.metrics, self.paths = {}, {}, {}
        for method in s["methods"]:
            options = {"steps": s["steps"], "n_max": s["n_max"]}
            if method == "flowedit":
                options["n_avg"] = s["n_avg"]
            path = [{"t": 0.0 if method == "inversion" else 1.0, "z": self.x, "z_src": None}]

            def record(info: dict, path=path) -> None:  # the positions the time slider shows
                z_src = info.get("z_src")
                path.append(
                    {"t": info["t_next"], "z": info["z"], "z_src": None if z_src is None else z_src[0, :ARROWS]}
                )

            started = time.perf_counter()
            y = edit(
                self.x,
                self.source,
                self.target,
                method,
                generator=torch.Generator().manual_seed(s["seed"] + 1),
                callback=None if method == "ot" else record,
                **options,
            )
            if len(path) == 1:  # a method without steps (ot): start and end
                path.append({"t": 0.0, "z": y, "z_src": None})
            self.paths[method] = path
            self.edits[method] = y
            self.metrics[method] = {
                "crossing": metrics.crossing_fraction(self.x, y, self.source, self.target),
                "cost": metrics.transport_cost(self.x, y),
                "log_p": metrics.target_log_likelihood(y, self.target),
                "seconds": time.perf_counter() - started,
            }
        self._draw(s)
        self.seconds = time.perf_counter() - tic
        self._status.value = f"recomputed and drawn in {self.seconds:.2f} s"

    def _title(self, method: str, s: dict[str, Any], now: float | None = None) -> str:
        T, n_max = s["steps"], s["n_max"]
        start = f"from t = {n_max / T:.2f}" if n_max < T else "from t = 1"
        solver = {
            "inversion": f"Euler, {T} steps up and down, {start}",
            "flowedit": f"{n_max} of {T} Euler steps, n_avg = {s['n_avg']}",
            "flowedit-mean": f"{n_max} of {T} Euler steps, mean over noise",
            "sdedit": f"noise to t = {n_max / T:.2f}, {n_max} Euler steps",
            "ot": "optimal pairing with target samples",
        }.get(method, f"{n_max} of {T} Euler steps")
        m = self.metrics[method]
        shown = "" if now is None else f" (now at t = {now:.2f})"
        return f"{method}{shown}\n{solver}\ncrossing {m['crossing']:.1%}, cost {m['cost']:.1f}"

    def _layout(self, methods: tuple[str, ...]) -> None:
        """Build one panel per method, with artists that :meth:`_draw` only updates (fast redraws)."""
        fig = self.figure
        fig.clear()
        fig.set_size_inches(4.6 * len(methods), 5.8)
        fig.subplots_adjust(left=0.7 / (4.6 * len(methods)), right=0.99, bottom=0.2, top=0.76, wspace=0.1)
        axes = fig.subplots(1, len(methods), sharex=True, sharey=True, squeeze=False)[0]
        self._panels = {}
        for ax, method in zip(axes, methods, strict=True):
            lines = LineCollection([], linewidths=0.4, alpha=0.35)
            ax.add_collection(lines)
            starts = ax.scatter([], [], s=4, linewidths=0)
            ends = ax.scatter([], [], c="black", s=4, marker="x", linewidths=0.6)
            crossed = ax.scatter([], [], s=40, facecolors="none", edgecolors="red", linewidths=1.0)
            noisy = ax.scatter([], [], s=22, facecolors="none", edgecolors="0.35", linewidths=0.9)
            zeros = np.zeros(ARROWS)
            arrows = ax.quiver(
                zeros,
                zeros,
                zeros,
                zeros,
                color="tab:red",
                angles="xy",
                scale_units="xy",
                scale=1 / ARROW_SCALE,
                width=0.008,
                zorder=5,
            )
            (stars,) = ax.plot([], [], "*", ms=13, mfc="gold", mec="black", ls="none")
            ax.set(aspect="equal", xlabel="x1")
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            self._panels[method] = (ax, lines, starts, ends, stars, crossed, noisy, arrows)
        axes[0].set_ylabel("x2")
        self._methods_drawn = methods

    def _draw(self, s: dict[str, Any]) -> None:
        methods = tuple(s["methods"])
        if getattr(self, "_methods_drawn", None) != methods:
            self._layout(methods)
        fig = self.figure
        x = self.x.numpy()
        modes = metrics.nearest_mode(self.x, self.source).numpy()
        colors = np.array(PALETTE)[modes % len(PALETTE)]
        clouds = [x, *(y.numpy() for y in self.edits.values()), self.target.means.numpy()]
        low, high = np.min([c.min(0) for c in clouds], 0), np.max([c.max(0) for c in clouds], 0)
        center, half = (low + high) / 2, (high - low).max() / 2 * 1.06 + 0.5
        own = torch.cdist(self.source.means, self.target.means).argmin(-1)[metrics.nearest_mode(self.x, self.source)]
        scrub = s["time"]
        for method, (ax, lines, starts, ends, stars, crossed, noisy, arrows) in self._panels.items():
            path = self.paths[method]
            k = round(scrub * (len(path) - 1))  # this method's own frame at this point of its edit
            y = path[k]["z"].numpy()
            lines.set_segments(np.stack([x, y], axis=1))  # (N, 2 ends, 2)
            lines.set_color(colors)
            starts.set_offsets(x)
            starts.set_facecolor(colors)
            ends.set_offsets(y)
            crosses = (metrics.nearest_mode(self.edits[method], self.target) != own).numpy()  # (N,)
            crossed.set_offsets(x[crosses].reshape(-1, 2))
            stars.set_data(*self.target.means.numpy().T)
            if k + 1 < len(
                path
            ):  # the step's velocity at a few points: (z_next - z) / (t_next - t), drawn x ARROW_SCALE
                dt = path[k + 1]["t"] - path[k]["t"]
                step = (path[k + 1]["z"][:ARROWS] - path[k]["z"][:ARROWS]).numpy()
                arrows.set_offsets(y[:ARROWS])
                arrows.set_UVC(*(step / abs(dt)).T)
                copies = path[k + 1]["z_src"]
                noisy.set_offsets(np.zeros((0, 2)) if copies is None else copies.numpy())
            else:
                arrows.set_UVC(np.zeros(ARROWS), np.zeros(ARROWS))
                noisy.set_offsets(np.zeros((0, 2)))
            ax.set(xlim=(center[0] - half, center[0] + half), ylim=(center[1] - half, center[1] + half))
            ax.set_title(self._title(method, s, path[k]["t"] if scrub < 1 else None), fontsize=11)
        handles = [
            Line2D([], [], ls="none", marker="o", ms=4, color=PALETTE[k], label=f"source point, mode {k + 1}")
            for k in range(self.source.n_components)
        ]
        edit_label = "its edit (line: the pair)" if s["time"] == 1 else "where it is now (line: from x)"
        handles.append(Line2D([], [], ls="none", marker="x", ms=4, color="black", label=edit_label))
        handles.append(
            Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec="red", label="crosses to another mode")
        )
        handles.append(Line2D([], [], ls="none", marker="*", ms=10, mfc="gold", mec="black", label="target mean"))
        for legend in fig.legends:
            legend.remove()
        if s["time"] < 1:
            label = f"next step (speed x{ARROW_SCALE:g})"
            handles.append(Line2D([], [], color="tab:red", marker=">", label=label))
            handles.append(
                Line2D([], [], ls="none", marker="o", mfc="none", mec="0.35", label="noisy copy $Z^{src}_t$")
            )
        fig.legend(handles=handles, loc="lower center", ncols=min(len(handles), 4), frameon=False, fontsize=10)
        fig.suptitle(
            f"N = {s['n']} points, source weight {s['weight']:.2f}, std {s['std']:.2f}, seed {s['seed']}", fontsize=12
        )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        self.image.value = buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def explore(source: GaussianMixture | None = None, target: GaussianMixture | None = None, **settings) -> Explorer:
    """An interactive view of the toy edit: every setting a slider, every method's pairing redrawn on change.

    ``source`` and ``target`` default to the paper's 2-D mixtures (:mod:`flowtoy.paper`). Settings (each also a
    control of the returned :class:`Explorer`): ``weight`` (the first source mode's weight; the others keep
    their proportions), ``std`` (the modes' standard deviation for the paper's mixtures, a factor on the given
    mixtures' standard deviations otherwise), ``steps`` (T, uniform grid), ``n_max`` (edit steps; the edit
    starts at ``t = n_max / T``), ``n_avg`` (FlowEdit's noise draws per step), ``seed`` (of the points; the
    edits' noise uses ``seed + 1``), ``n`` (points) and ``methods`` (some of :data:`EXPLORER_METHODS`).
    Defaults: :data:`DEFAULTS`, inversion and FlowEdit: 10 Euler steps, where Euler inversion intermixes the
    modes and FlowEdit does not. "flowedit-mean" in 2-D is the exact expectation over the noise.
    """
    return Explorer(source, target, settings)
