"""flowedit sweep: the grid of edits, its contact sheet and records, resuming, and bad input before loading."""

import json

import numpy as np
import pytest
from PIL import Image

from flowedit.cli import main
from flowedit.models import FAMILIES, load
from flowedit.runs.sweeps import SHEET, sweep

SIZE = (64, 48)


def picture():
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def editor():
    return load("tiny-sd3")


def test_a_sweep_edits_every_cell_once_and_draws_one_labelled_sheet(editor, tmp_path):
    cells = sweep(
        editor, picture(), "a cat", "a dog", tmp_path, [3, 5], [2.0, 6.0], seeds=[1, 2], steps=6, progress=False
    )
    assert [(c.n_max, c.tar_guidance, c.seed) for c in cells][:3] == [(3, 2.0, 1), (3, 2.0, 2), (3, 6.0, 1)]
    assert len(cells) == 8 and all(c.made for c in cells) and len({c.latent_mse for c in cells}) > 1
    with Image.open(tmp_path / SHEET) as sheet:  # the source plus a row per n_max and a column per guidance x seed
        scale = -(-160 // SIZE[0])
        assert sheet.size == (5 * SIZE[0] * scale, 3 * (SIZE[1] * scale + 30))
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(records) == 8 and {r["n_max"] for r in records} == {3, 5} and all("latent_mse" in r for r in records)
    one = editor.render(picture(), "a cat", "a dog", editor.settings(steps=6, n_max=5, tar_guidance=6.0, seed=2))[0]
    with Image.open(cells[-1].path) as cell:  # a cell is the plain edit of its settings
        assert np.array_equal(np.asarray(cell.convert("RGB")), np.asarray(one))

    again = sweep(
        editor, picture(), "a cat", "a dog", tmp_path, [3, 5], [2.0, 6.0], seeds=[1, 2], steps=6, progress=False
    )
    assert not any(c.made for c in again) and [c.latent_mse for c in again] == [c.latent_mse for c in cells]
    with pytest.raises(ValueError, match="pass --overwrite to replace it"):  # another request: refused, kept
        sweep(editor, picture(), "a cat", "a dog", tmp_path, [3, 5], [2.0, 6.0], seeds=[1, 2], steps=7, progress=False)
    assert not any(c.made for c in again)
    other = sweep(
        editor,
        picture(),
        "a cat",
        "a dog",
        tmp_path,
        [3, 5],
        [2.0, 6.0],
        [1, 2],
        steps=7,
        overwrite=True,
        progress=False,
    )
    assert all(c.made for c in other)  # asked to overwrite: every cell redone


@pytest.mark.parametrize("family", [name for name, f in FAMILIES.items() if name != "sd3" and f.media == "image"])
def test_every_family_sweeps(family, tmp_path):
    editor = load(f"tiny-{family}")
    cells = sweep(editor, picture(), "a cat", "a dog", tmp_path, [2, 3], [4.0], steps=4, progress=False)
    assert [c.n_max for c in cells] == [2, 3] and all(c.path.is_file() for c in cells)
    assert (tmp_path / SHEET).is_file()


def test_the_command_writes_the_sheet_and_refuses_bad_grids_before_loading(tmp_path, capsys, monkeypatch):
    picture().save(tmp_path / "in.png")
    argv = ["sweep", "--image", str(tmp_path / "in.png"), "--source", "a cat", "--target", "a dog", "--steps", "6"]
    argv += ["--out-dir", str(tmp_path / "out")]
    assert main([*argv, "--model", "tiny-sd3", "--n-max", "3,5", "--tar-guidance", "4"]) == 0
    assert (tmp_path / "out" / SHEET).is_file() and len(list((tmp_path / "out" / "cells").glob("*.png"))) == 2
    capsys.readouterr()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # an SD3 that cannot load here: the grid is refused first
    missing = [*argv, "--model", "stabilityai/stable-diffusion-3-medium-diffusers"]
    assert main([*missing, "--n-max", "3,60", "--tar-guidance", "4"]) == 2
    assert "n_max = 60 exceeds the number of steps (6)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*missing, "--n-max", "3,x", "--tar-guidance", "4"])
    assert "'3,x' is not a comma-separated list of ints" in capsys.readouterr().err
