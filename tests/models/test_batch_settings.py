"""flowedit settings and output paths: one short line and exit 2 before any model loads; strict records."""

import json

import pytest
from batch_support import FAST, batch_file, entry, run
from PIL import Image

from flowedit.cli import main


# -- settings -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--src-guidance", "nan"], "src_guidance must be a finite number, got nan"),
        (["--tar-guidance", "inf"], "tar_guidance must be a finite number, got inf"),
        (["--method", "sdedit", "--n-avg", "2"], "n_avg applies to method flowedit only, not sdedit"),
        (["--method", "inversion", "--n-min", "1"], "n_min applies to method flowedit only, not inversion"),
        (["--steps", "10000000"], "steps must lie in [1, 1000], got 10000000"),
        (["--steps", "1000000000", "--n-max", "3"], "steps must lie in [1, 1000], got 1000000000"),
        (["--n-avg", "1000"], "n_avg must lie in [1, 64], got 1000"),
        (["--seed", "-1"], "seed must lie in [0, "),
        (["--max-pixels", "0"], "--max-pixels must be a positive number"),
        (["--device", "cuda"], "CUDA is not available on this machine; use --device cpu"),
        (["--device", "warp-drive"], "is not a torch device"),
    ],
)
def test_bad_settings_get_one_short_line_before_any_model_loads(folder, capsys, monkeypatch, extra, message):
    import flowedit.models._editor as editor_module

    monkeypatch.setattr(editor_module, "load", lambda *a, **k: pytest.fail("the model must not load"))
    edits = batch_file(folder, entry())
    assert run(folder, edits, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and len(err) < 300


@pytest.mark.parametrize(
    ("out", "message"),
    [("edit", "not an image file name"), ("a.png", "is the source image"), (".", "is a folder")],
)
def test_edit_refuses_an_output_path_it_cannot_or_must_not_write(folder, capsys, out, message):
    before = (folder / "a.png").read_bytes()
    argv = ["edit", "--image", str(folder / "a.png"), "--source", "a", "--target", "b", "--out", str(folder / out)]
    assert main([*argv, *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert (folder / "a.png").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]


def test_edit_refuses_an_oversize_image_with_one_line(folder, capsys):
    Image.new("L", (3000, 3000)).save(folder / "big.png")
    argv = [
        "edit",
        "--image",
        str(folder / "big.png"),
        "--source",
        "a",
        "--target",
        "b",
        "--out",
        str(folder / "o.png"),
    ]
    assert main([*argv, *FAST, "--max-pixels", "1000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "3000x3000" in err and not (folder / "o.png").exists()


def test_the_float16_hint_appears_only_for_float16_models(folder, capsys, monkeypatch):
    from flowedit.models import SD3Adapter

    real = SD3Adapter._forward
    monkeypatch.setattr(SD3Adapter, "_forward", lambda *a: [v * float("nan") for v in real(*a)])
    argv = ["edit", "--image", str(folder / "a.png"), "--source", "a", "--target", "b", "--out", str(folder / "o.png")]
    assert main([*argv, *FAST]) == 1
    err = capsys.readouterr().err
    assert "returned NaN or inf at step" in err and "float16" not in err and "float32" in err
    assert main([*argv, *FAST, "--dtype", "float16"]) == 1
    assert "float16 overflow" in capsys.readouterr().err and not (folder / "o.png").exists()


def test_records_and_embedded_records_are_strict_json(folder):
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 0
    for line in (folder / "out" / "results.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in results.jsonl"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "meta"], "cannot run an edit"),
        (["--max-file-size", "1e-9"], "less than one byte"),
        (["--out", "missing/folder/o.png"], "does not exist; create it first"),
    ],
)
def test_more_edit_options_fail_before_the_model_loads(folder, capsys, monkeypatch, extra, message):
    import flowedit.models._editor as editor_module

    monkeypatch.setattr(editor_module, "load", lambda *a, **k: pytest.fail("the model must not load"))
    monkeypatch.chdir(folder)
    argv = ["edit", "--image", "a.png", "--source", "a", "--target", "b", "--out", "o.png", *FAST, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not (folder / "missing").exists()
