"""flowtoy.plot draws what it says: right panels, right points and colours, annotations, a real GIF."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from PIL import Image

from flowtoy import metrics, paper, plot
from flowtoy._edit import edit
from flowtoy.sweep import sweep

matplotlib.use("Agg")  # no windows; switches pyplot even though it is imported above

N, STEPS = 300, 10


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def toy():
    """Source points, their inverted noise, both edits, and the paths of both methods (each (S, N, 2))."""
    source, target = paper.source(), paper.target()
    x = source.sample(N, torch.Generator().manual_seed(0))
    inv, fe = [x], [x]

    y_inv = edit(x, source, target, "inversion", steps=STEPS, callback=lambda info: inv.append(info["z"]))
    gen = torch.Generator().manual_seed(1)
    y_fe = edit(x, source, target, "flowedit", steps=STEPS, generator=gen, callback=lambda info: fe.append(info["z"]))
    paths = {"inversion": torch.stack(inv), "flowedit": torch.stack(fe)}
    noise = inv[STEPS]  # the end of the inversion phase, t = 1
    return dict(source=source, target=target, x=x, noise=noise, y_inv=y_inv, y_fe=y_fe, paths=paths)


def by_gid(ax, gid):
    return [c for c in ax.collections if c.get_gid() == gid]


def saves_png(fig, path):
    fig.savefig(path)
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 100


def test_mode_colors_are_blue_then_orange_and_reject_non_integers():
    colors = plot.mode_colors(torch.tensor([0, 1, 1, 0]))
    assert colors.shape == (4, 4)
    np.testing.assert_allclose(colors[0], to_rgba("tab:blue"))
    np.testing.assert_allclose(colors[1], to_rgba("tab:orange"))
    np.testing.assert_array_equal(colors[0], colors[3])
    for bad in ([0.5, 1.0], [[0, 1]], [-1, 0]):
        with pytest.raises(ValueError, match="non-negative integers"):
            plot.mode_colors(np.asarray(bad))


def test_figure3_draws_every_point_coloured_by_its_source_mode(toy, tmp_path):
    source, target, x = toy["source"], toy["target"], toy["x"]
    noise = toy["noise"].numpy()  # numpy arrays and tensors are both accepted
    fig = plot.figure3(x, noise, toy["y_inv"], toy["y_fe"], source, target)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes] == ["source", "inverted noise (t = 1)", "edit by inversion", "FlowEdit"]
    expected = plot.mode_colors(metrics.nearest_mode(x, source))
    for ax, pts in zip(fig.axes, (x, noise, toy["y_inv"], toy["y_fe"]), strict=True):
        (dots,) = by_gid(ax, "points")
        np.testing.assert_allclose(dots.get_offsets(), np.asarray(pts))
        np.testing.assert_allclose(dots.get_facecolors()[:, :3], expected[:, :3])
        assert by_gid(ax, "pairs") == []
    limits = [(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes]
    assert limits[0] == limits[2] == limits[3] != limits[1]
    (xlim, ylim) = limits[0]
    assert xlim[0] < -15 < 15 < ylim[1]  # the target means (-15, 0) and (0, 15) are in view
    crossed = [t.get_text() for ax in fig.axes[2:] for t in ax.texts]
    assert crossed[1] == f"crossed: {metrics.crossing_fraction(x, toy['y_fe'], source, target):.1%}"
    saves_png(fig, tmp_path / "figure3.png")


def test_figure3_pairs_join_the_chosen_points_to_their_edits(toy):
    args = (toy["x"], toy["noise"], toy["y_inv"], toy["y_fe"], toy["source"], toy["target"])
    fig = plot.figure3(*args, pairs=7, seed=3, titles=("a", "b", "c", "d"))
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d"]
    assert by_gid(fig.axes[0], "pairs") == by_gid(fig.axes[1], "pairs") == []
    x = toy["x"].numpy()
    for ax, y in zip(fig.axes[2:], (toy["y_inv"], toy["y_fe"]), strict=True):
        (lines,) = by_gid(ax, "pairs")
        segments = np.stack(lines.get_segments())  # (pairs, 2, 2)
        assert segments.shape == (7, 2, 2)
        rows = [int(np.flatnonzero((x == start).all(1))[0]) for start in segments[:, 0]]
        assert len(set(rows)) == 7
        np.testing.assert_allclose(segments[:, 1], y.numpy()[rows])
    with pytest.raises(ValueError, match="titles must hold 4"):
        plot.figure3(*args, titles=("only one",))
    with pytest.raises(ValueError, match="one N"):
        plot.figure3(toy["x"][:10], *args[1:])


def test_figure3_says_how_the_edits_were_made_and_labels_every_mark(toy):
    args = (toy["x"], toy["noise"], toy["y_inv"], toy["y_fe"], toy["source"], toy["target"])
    fig = plot.figure3(*args, pairs=5, steps=10)
    assert [ax.get_title() for ax in fig.axes] == [
        "source",
        "inverted noise (t = 1, 10 Euler steps)",
        "edit by inversion (10 Euler steps up, 10 down)",
        "FlowEdit (10 of 10 Euler steps)",
    ]
    assert [ax.get_xlabel() for ax in fig.axes] == ["$x_1$"] * 4 and fig.axes[0].get_ylabel() == "$x_2$"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[2:] == ["target means", "density contours (1, 2, 3 std)", "a pair $x_i \\to y_i$"]
    assert "inverted noise (t = 0.5, 5 Euler steps)" in [
        ax.get_title() for ax in plot.figure3(*args, steps=10, n_max=5).axes
    ]


def test_trajectories_one_panel_per_method_and_n_show_paths(toy, tmp_path):
    paths = toy["paths"]
    fig = plot.trajectories(paths, toy["source"], toy["target"], n_show=12, seed=5)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, (name, path) in zip(fig.axes, paths.items(), strict=True):
        assert ax.get_title().startswith(name)
        (lines,) = by_gid(ax, "paths")
        polylines = lines.get_segments()
        assert len(polylines) == 12 and all(p.shape == (len(path), 2) for p in polylines)
        starts = np.stack([p[0] for p in polylines])
        assert all((path[0].numpy() == s).all(1).any() for s in starts)  # each line starts at a source point
    assert len(toy["paths"]["inversion"]) == 2 * STEPS + 1 and len(toy["paths"]["flowedit"]) == STEPS + 1
    with pytest.raises(ValueError, match=r"\(S, N, 2\)"):
        plot.trajectories({"flat": toy["x"]}, toy["source"], toy["target"])
    saves_png(fig, tmp_path / "trajectories.png")


def test_velocity_field_arrows_are_the_mixture_velocity(toy, tmp_path):
    source = toy["source"]
    fig = plot.velocity_field(source, 0.5, grid=9)
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the field and its colour bar
    ax = fig.axes[0]
    assert "t = 0.5" in ax.get_title()
    (arrows,) = [c for c in ax.collections if isinstance(c, Quiver)]
    assert arrows.N == 81
    v = source.velocity(torch.from_numpy(np.asarray(arrows.XY)), 0.5).numpy()
    np.testing.assert_allclose(np.stack([arrows.U, arrows.V], -1), v)
    # default extent: the marginal means (1 - t) mu = +-7.5/sqrt2 padded by 4 marginal stds sqrt(0.25 + 0.25)
    half = 7.5 / 2**0.5 + 4 * 0.5**0.5
    assert ax.get_xlim() == pytest.approx((-half, half)) and ax.get_ylim() == pytest.approx((-half, half))

    outer, axes = plt.subplots(1, 2)
    assert plot.velocity_field(source, 1.0, extent=(-2, 2, -1, 1), ax=axes[1]) is outer
    assert axes[1].get_xlim() == (-2, 2) and axes[1].get_ylim() == (-1, 1) and not axes[0].collections
    with pytest.raises(ValueError, match="t must lie in"):
        plot.velocity_field(source, 1.5)
    saves_png(fig, tmp_path / "velocity.png")


def test_regime_maps_annotate_every_cell_on_shared_scales(tmp_path):
    result = sweep(steps=(2, 5, 10), weights=(0.5, 0.8), n=100, progress=False)
    fig = plot.regime_maps(result)
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert isinstance(fig, Figure) and len(heatmaps) == 4 and len(fig.axes) == 6  # 2 x 2 maps, 2 colour bars
    for k, ax in enumerate(heatmaps):
        row, method = divmod(k, 2)
        values = (result.crossing, result.cost)[row][result.methods[method]]
        assert len(ax.texts) == 6
        fmt = ".2f" if row == 0 else ".0f"
        assert [t.get_text() for t in ax.texts] == [format(v, fmt) for v in values.ravel()]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "5", "10"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "0.8"]
    assert heatmaps[0].images[0].get_clim() == heatmaps[1].images[0].get_clim() == (0.0, 1.0)
    costs = np.stack(list(result.cost.values()))
    assert heatmaps[2].images[0].get_clim() == heatmaps[3].images[0].get_clim() == (costs.min(), costs.max())
    saves_png(fig, tmp_path / "regime.png")


def test_animate_titles_each_frame_with_the_method_and_its_phase(toy, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    titles, set_title = [], Axes.set_title
    monkeypatch.setattr(
        Axes, "set_title", lambda ax, label, *a, **k: titles.append(label) or set_title(ax, label, *a, **k)
    )
    frames = toy["paths"]["flowedit"][:3, :20]
    labels = metrics.nearest_mode(frames[0], toy["source"])
    title, phases = "inversion, 2 Euler steps", ["start", "up", "up"]
    plot.animate(frames, [0.0, 0.5, 1.0], labels, tmp_path / "a.gif", title=title, phases=phases)
    expected = [f"{title}\n{phase}, t = {t}" for phase, t in zip(phases, ("0.000", "0.500", "1.000"), strict=True)]
    assert all(label in titles for label in expected), titles


def test_animate_writes_one_gif_frame_per_time_and_no_temporary_file(toy, tmp_path):
    frames = toy["paths"]["flowedit"][:, :50]  # (F, 50, 2)
    times = np.linspace(1, 0, len(frames))
    labels = metrics.nearest_mode(frames[0], toy["source"])
    out = tmp_path / "new" / "dir" / "edit.gif"
    result = plot.animate(frames, times, labels, str(out), fps=5, target=toy["target"])
    assert result == out
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(frames)
    assert sorted(p.name for p in out.parent.iterdir()) == ["edit.gif"]

    out.write_bytes(b"old")  # an existing file is replaced whole
    plot.animate(frames[:3], times[:3], labels, out, source=toy["source"])
    with Image.open(out) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="needs 11 times"):
        plot.animate(frames, times[:4], labels, out)
    with pytest.raises(ValueError, match="needs 11 phases"):
        plot.animate(frames, times, labels, out, phases=["up"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["edit.gif"]
