"""flowtoy.explore: driven as a student would drive it, by setting control values and reading the metrics."""

import pytest
import torch

import flowtoy
from flowtoy import GaussianMixture, metrics, paper

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def view():
    return flowtoy.explore(n=200)


def direct(x, source, target, method, seed, **options):
    y = flowtoy.edit(x, source, target, method, generator=torch.Generator().manual_seed(seed + 1), **options)
    return metrics.crossing_fraction(x, y, source, target), metrics.transport_cost(x, y)


def test_defaults_show_coarse_euler_inversion_intermixing_and_flowedit_not(view):
    assert set(view.metrics) == {"inversion", "flowedit"}
    assert view.metrics["inversion"]["crossing"] > 0.3
    assert view.metrics["flowedit"]["crossing"] == 0.0
    assert view.metrics["flowedit"]["cost"] < view.metrics["inversion"]["cost"]
    assert view.controls["steps"].value == view.controls["n_max"].value == 10
    assert bytes(view.image.value[:4]) == b"\x89PNG"


def test_metrics_are_those_of_the_same_edit_run_directly(view):
    view.controls["weight"].value = 0.8
    view.controls["n_avg"].value = 4
    source, target = paper.source(1.0, [0.8, 1 - 0.8]), paper.target(1.0)  # [w, 1 - w], as the notebooks
    torch.testing.assert_close(view.source.weights, source.weights, rtol=0, atol=1e-15)
    x = source.sample(200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(view.x, x)
    for method, options in {"inversion": {}, "flowedit": {"n_avg": 4}}.items():
        crossing, cost = direct(x, source, target, method, 0, steps=10, n_max=10, **options)
        assert view.metrics[method]["crossing"] == crossing
        assert view.metrics[method]["cost"] == cost
    view.controls["weight"].value, view.controls["n_avg"].value = 0.5, 1


def test_std_seed_and_n_recompute(view):
    before = dict(view.metrics["flowedit"])
    view.controls["seed"].value = 3
    assert view.metrics["flowedit"] != before
    view.controls["n"].value = 100
    assert view.x.shape == (100, 2) and view.edits["flowedit"].shape == (100, 2)
    view.controls["std"].value = 2.0
    torch.testing.assert_close(view.target.covs, 4.0 * torch.eye(2, dtype=torch.float64).expand(2, 2, 2))
    view.controls["seed"].value, view.controls["n"].value, view.controls["std"].value = 0, 200, 1.0


def test_n_max_follows_steps_when_editing_over_all_steps_and_is_clamped_otherwise(view):
    view.controls["steps"].value = 20
    assert view.controls["n_max"].value == 20 and view.controls["n_max"].max == 20
    assert "20 of 20 Euler steps" in view.figure.axes[1].get_title()
    view.controls["n_max"].value = 15
    start = view.metrics["flowedit"]["cost"]
    view.controls["steps"].value = 30
    assert view.controls["n_max"].value == 15  # a partial edit keeps its n_max
    assert view.metrics["flowedit"]["cost"] != start  # T changed, so t_start = n_max / T did
    view.controls["steps"].value = 8
    assert view.controls["n_max"].value == 8  # clamped to the new T
    view.controls["steps"].value = 10
    assert view.controls["n_max"].value == 10


def test_each_change_recomputes_once(monkeypatch):
    view = flowtoy.explore(n=50)
    calls = []
    update = view.update
    monkeypatch.setattr(view, "update", lambda: calls.append(1) or update())
    for name, value in [("steps", 30), ("steps", 4), ("n_max", 2), ("steps", 9), ("steps", 1), ("weight", 0.3)]:
        view.controls[name].value = value
        assert len(calls) == 1, (name, value)
        calls.clear()
    view.controls["methods"].value = ("flowedit", "inversion", "sdedit", "ot")  # from code: one recompute
    assert len(calls) == 1 and [m for m, box in view._boxes.items() if box.value] == [
        "flowedit",
        "inversion",
        "sdedit",
        "ot",
    ]
    calls.clear()
    view._boxes["ot"].value = False  # a tick: one recompute
    assert len(calls) == 1 and set(view.metrics) == {"flowedit", "inversion", "sdedit"}
    calls.clear()
    view.controls["time"].value = 0.4  # scrubbing: no recompute
    assert not calls
    assert view.controls["n_max"].value == 1


def test_choosing_methods_redraws_one_labelled_panel_each(view):
    five = ("inversion", "flowedit", "flowedit-mean", "sdedit", "ot")
    view.controls["methods"].value = five
    assert set(view.metrics) == set(five)
    assert len(view.figure.axes) == 5
    titles = {ax.get_title().split("\n")[0]: ax.get_title() for ax in view.figure.axes}  # panels in METHODS order
    assert "Euler, 10 steps up and down" in titles["inversion"] and "crossing" in titles["inversion"]
    assert "cost" in titles["inversion"]
    assert all(ax.get_xlabel() == "x1" for ax in view.figure.axes)
    labels = [text.get_text() for text in view.figure.legends[0].get_texts()]
    assert labels == [
        "source point, mode 1",
        "source point, mode 2",
        "its edit (line: the pair)",
        "crosses to another mode",
        "target mean",
    ]
    assert view.metrics["ot"]["crossing"] < view.metrics["sdedit"]["crossing"]
    view.controls["methods"].value = ("flowedit",)
    assert set(view.metrics) == {"flowedit"} and len(view.figure.axes) == 1
    view.controls["methods"].value = ("inversion", "flowedit")


def test_given_mixtures_are_used_and_scaled():
    source = GaussianMixture([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]], [0.5, 0.5, 0.5], [0.2, 0.3, 0.5])
    target = GaussianMixture([[-3.0, 6.0], [3.0, 6.0], [0.0, 9.0]], 0.5)
    view = flowtoy.explore(source, target, weight=0.6, std=2.0, n=100, steps=5, methods=["flowedit"])
    torch.testing.assert_close(view.source.weights, torch.tensor([0.6, 0.4 * 0.3 / 0.8, 0.4 * 0.5 / 0.8]).double())
    torch.testing.assert_close(view.source.covs, source.covs * 4)
    torch.testing.assert_close(view.target.weights, target.weights)
    assert len(view.figure.legends[0].get_texts()) == 3 + 3
    assert "_repr_mimebundle_" in dir(view) and "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


@pytest.mark.parametrize(
    "args, settings, message",
    [
        ((paper.source(),), {}, "give both source and target"),
        ((GaussianMixture([[0.0, 0, 0]]), GaussianMixture([[1.0, 0, 0]])), {}, "explore draws 2-D points"),
        ((), {"wieght": 0.5}, r"unknown setting\(s\) wieght"),
        ((), {"weight": 1.0}, r"^weight must be a finite number > 0 and < 1, got 1.0$"),
        ((), {"weight": 0.99}, r"^weight must be in \[0.05, 0.95\] \(the slider's range\), got 0.99$"),
        ((), {"steps": 10**9}, r"^steps = 1000000000 is over the limit of 10000; a larger run would take hours"),
        ((), {"steps": 5, "n_max": 6}, "n_max must be <= steps"),
        ((), {"methods": ["euler"]}, "methods must be some of"),
    ],
)
def test_bad_settings_get_one_clear_error(args, settings, message):
    with pytest.raises(ValueError, match=message):
        flowtoy.explore(*args, **settings)


def test_the_sliders_and_defaults_derive_from_the_settings():
    import dataclasses

    meta = {f.name: f.metadata["setting"] for f in dataclasses.fields(flowtoy.Settings)}
    view = flowtoy.explore(n=100, methods=["flowedit"])
    for name in ("weight", "std", "steps", "n_avg", "seed", "n"):
        low, high, step = meta[name].slider
        assert (view.controls[name].min, view.controls[name].max, view.controls[name].step) == (low, high, step), name
    assert view.controls["n_max"].value == view.controls["steps"].value == 10  # the rule: n_max unset means T


def test_the_method_checkboxes_derive_from_flowtoys_methods_and_drive_the_panels(view):
    from flowtoy._edit import METHODS

    assert tuple(view._boxes) == METHODS == flowtoy._explore.EXPLORER_METHODS  # a new method gets a box unasked
    view._boxes["sdedit"].value = True
    assert set(view.metrics) == {"inversion", "flowedit", "sdedit"} and len(view.figure.axes) == 3
    view._boxes["sdedit"].value = False
    assert set(view.metrics) == {"inversion", "flowedit"} and not view._boxes["sdedit"].value


def test_a_sharp_figure_with_readable_titles_and_the_crossing_points_ringed(view):
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(view.image.value))
    width, height = image.size
    assert flowtoy._explore.DPI >= 100 and height == round(view.figure.get_size_inches()[1] * flowtoy._explore.DPI)
    assert all(ax.title.get_fontsize() >= 11 for ax in view.figure.axes)
    panel = {ax.get_title().split("\n")[0]: ax for ax in view.figure.axes}
    rings = panel["inversion"].collections[3]  # the red rings of the inversion panel
    assert len(rings.get_offsets()) == round(view.metrics["inversion"]["crossing"] * len(view.x)) > 0
    assert len(panel["flowedit"].collections[3].get_offsets()) == 0  # FlowEdit crosses nothing here


def test_the_time_slider_scrubs_the_edits_without_recomputing(view, monkeypatch):
    edits = dict(view.edits)
    monkeypatch.setattr(flowtoy._explore, "edit", lambda *a, **k: pytest.fail("scrubbing must not recompute"))
    view.controls["time"].value = 0.5
    assert view.edits == edits
    panel = {ax.get_title().split(" ")[0].split("\n")[0]: ax for ax in view.figure.axes}
    inversion, flowedit = (panel[m].collections[2].get_offsets() for m in ("inversion", "flowedit"))
    path = view.paths["flowedit"]
    assert len(path) == 11 and len(view.paths["inversion"]) == 21  # 10 steps; inversion goes up 10 and down 10
    assert (flowedit == path[5]["z"].numpy()).all() and (inversion == view.paths["inversion"][10]["z"].numpy()).all()
    assert "now at t = 0.50" in panel["flowedit"].get_title()  # FlowEdit halfway; inversion at its noise, t = 1
    assert "now at t = 1.00" in panel["inversion"].get_title()
    noisy = panel["flowedit"].collections[4].get_offsets()  # FlowEdit's noisy source copies of the next step
    assert noisy.shape == (flowtoy._explore.ARROWS, 2)
    view.controls["time"].value = 1.0
    assert (panel["flowedit"].collections[2].get_offsets() == view.edits["flowedit"].numpy()).all()
