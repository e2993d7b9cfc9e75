"""flowtoy.digits: real 8x8 digits with exact 64-D velocities, edited by every method."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtoy
from flowtoy import digits
from flowtoy.cli import main


def test_the_data_split_and_pixel_scale():
    images, labels = digits.load()
    train, test = digits.load("train"), digits.load("test")
    assert images.shape == (1797, 64) and images.dtype == torch.float64 and labels.dtype == torch.int64
    assert images.min() == -1 and images.max() == 1
    assert len(test[0]) == int(0.3 * 1797) and len(train[0]) + len(test[0]) == 1797
    rows = {tuple(r) for r in train[0].tolist()}
    assert sum(tuple(r) in rows for r in test[0].tolist()) < 10  # disjoint images (a few duplicates exist)
    threes, labels3 = digits.load("test", 3)
    assert (labels3 == 3).all() and len(threes) == (test[1] == 3).sum()
    with pytest.raises(ValueError, match="a digit label must be an integer from 0 to 9, got 10"):
        digits.load("test", 10)
    with pytest.raises(ValueError, match="split must be 'train', 'test' or 'all'"):
        digits.load("validation")


def test_models_are_cached_fitted_to_their_class_and_the_classifier_is_accurate():
    three = digits.model(3)
    assert digits.model(3) is three and three.dim == 64 and three.n_components == digits.COMPONENTS
    train3, _ = digits.load("train", 3)
    torch.testing.assert_close(three.mean(), train3.mean(0), rtol=0, atol=1e-6)
    images, labels = digits.load("test")
    accuracy = (digits.classify(images).argmax(1) == labels).double().mean().item()
    assert accuracy > 0.95
    # held-out images of a class are far likelier under their own model than under any other
    test3, _ = digits.load("test", 3)
    own = three.log_prob(test3)
    assert all((own > digits.model(k).log_prob(test3)).double().mean() > 0.9 for k in range(10) if k != 3)


@settings(max_examples=15)
@given(t=st.floats(0.02, 0.98), k=st.integers(0, 9))
def test_the_64d_velocity_satisfies_its_closed_forms(t, k):
    mixture = digits.model(k)
    z = mixture.marginal(t).sample(16, torch.Generator().manual_seed(k))
    v = mixture.velocity(z, t)
    scale = 1 + z.abs().max().item()
    torch.testing.assert_close(t * v, z - mixture.denoise(z, t), rtol=0, atol=1e-9 * scale)
    torch.testing.assert_close((1 - t) * v, mixture.expected_noise(z, t) - z, rtol=0, atol=1e-9 * scale)
    zg = z.clone().requires_grad_(True)
    (score,) = torch.autograd.grad(mixture.marginal(t).log_prob(zg).sum(), zg)
    torch.testing.assert_close((1 - t) * v, -(z + t * score), rtol=0, atol=1e-7 * scale)


@pytest.mark.parametrize("method", ["flowedit", "flowedit-mean"])
def test_an_edit_into_the_same_class_returns_the_images_unchanged(method):
    x = digits.load("test", 5)[0][:10]
    five = digits.model(5)
    y = flowtoy.edit(x, five, five, method, steps=10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, x)  # v_tar(z_src) - v_src(z_src) = 0 exactly, at every step


@pytest.mark.parametrize(("source", "target"), [(3, 8), (1, 7), (0, 6), (9, 4)])
def test_flowedit_reaches_the_target_class_and_moves_less_than_inversion(source, target):
    x, rows = digits.compare(source, target, methods=("flowedit", "inversion (rk4)"))
    flowedit, inversion = rows[0], rows[1]
    assert flowedit.target_probability > 0.8 > digits.target_probability(x, target)
    assert flowedit.cost < inversion.cost
    ot = rows[-1]
    assert ot.method == "gaussian ot"
    assert flowedit.style > ot.style  # FlowEdit keeps more of each writer's hand than the least-cost exact map


def test_the_gaussian_ot_map_pushes_the_source_law_onto_the_target_at_its_stated_cost():
    src, tar = digits.model(2), digits.model(7)
    m = digits.gaussian_ot_map(src, tar)
    S, T = src.covs[0], tar.covs[0]
    torch.testing.assert_close(m.A @ S @ m.A.T, T, rtol=0, atol=1e-8)
    torch.testing.assert_close(m(src.means), tar.means, rtol=0, atol=1e-9)
    eye = torch.eye(64, dtype=torch.float64)
    expected = (tar.means - src.means).square().sum() + torch.trace((m.A - eye) @ S @ (m.A - eye).T)
    assert m.cost == pytest.approx(expected.item(), rel=1e-8)
    with pytest.raises(ValueError, match="single-component"):
        digits.gaussian_ot_map(digits.model(2, components=2), tar)


def test_the_digits_command_writes_the_grid_and_prints_every_method(tmp_path, capsys):
    out = tmp_path / "d.png"
    assert (
        main(
            ["digits", "--source", "1", "--target", "7", "--out", str(out), "--n", "3", "--steps", "10", "--n-max", "8"]
        )
        == 0
    )
    table = capsys.readouterr().out
    for method in [*digits.METHODS, "gaussian ot"]:
        assert f"\n{method} " in table
    assert out.stat().st_size > 0 and [p.name for p in tmp_path.iterdir()] == ["d.png"]
    assert main(["digits", "--source", "4", "--target", "4", "--out", str(out)]) == 2
    assert "both 4" in capsys.readouterr().err
