"""flowedit sweep as safe as a batch run (it is one): confined outputs, exact cell names, resume only the same
request, one claim per cell, bounded grids; and one record schema whichever command made an edit."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from flowedit.cli import main
from flowedit.media.images import ImageLimits
from flowedit.media.source import embedded_record, fingerprint
from flowedit.models import load
from flowedit.runs.records import read_records
from flowedit.runs.sweeps import MAX_CELLS, SHEET, SweepCell, cell_name, contact_sheet, sweep

SIZE = (32, 32)
FAST = ["--model", "tiny-sd3", "--steps", "4"]


def picture(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


@pytest.fixture
def folder(tmp_path):
    picture().save(tmp_path / "in.png")
    return tmp_path


def argv(folder, *extra, out="out", n_max="2,3", guidance="4"):
    common = ["sweep", "--image", str(folder / "in.png"), "--source", "a cat", "--target", "a dog", *FAST]
    return [*common, "--out-dir", str(folder / out), "--n-max", n_max, "--tar-guidance", guidance, *extra]


def snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and ".flowedit-locks" not in p.parts}


def test_s1_a_cells_folder_that_is_a_link_is_refused_and_nothing_lands_outside(folder, capsys):
    outside = folder / "outside"
    outside.mkdir()
    (folder / "out").mkdir()
    (folder / "out" / "cells").symlink_to(outside)
    assert main(argv(folder)) == 2
    assert "is not a folder inside" in capsys.readouterr().err and list(outside.iterdir()) == []


def test_s2_a_hard_linked_results_file_is_refused_and_left_as_it_was(folder, capsys):
    (folder / "out").mkdir()
    (folder / "elsewhere.jsonl").write_text("{}\n")
    os.link(folder / "elsewhere.jsonl", folder / "out" / "results.jsonl")
    assert main(argv(folder)) == 2
    assert "hard link" in capsys.readouterr().err and (folder / "elsewhere.jsonl").read_text() == "{}\n"


def test_d1_a_grid_over_the_limit_is_refused_from_the_lengths_alone(folder, capsys):
    thousand = ",".join(str(k) for k in range(1000))
    with pytest.raises(SystemExit):  # the option itself: more values than a sweep has cells
        main(argv(folder, n_max=thousand, guidance=thousand))
    assert f"give at most {MAX_CELLS} values" in capsys.readouterr().err
    editor = load("tiny-sd3")
    with pytest.raises(ValueError, match=r"a sweep has 1 to 64 cells; 1000 x 1000 x 1 = 1000000 given"):
        sweep(editor, picture(), "a", "b", folder / "py", list(range(1000)), [1.0] * 1000, progress=False)
    with pytest.raises(ValueError, match="tar_guidance lists 4.0 twice"):
        sweep(editor, picture(), "a", "b", folder / "py", [2], [4.0, 4.0], progress=False)
    assert not (folder / "py").exists() and not (folder / "out").exists()


def test_l1_another_sweep_into_a_sweep_folder_stops_until_overwrite(folder, capsys):
    assert main(argv(folder)) == 0
    before = snapshot(folder / "out")
    capsys.readouterr()
    assert main(argv(folder, "--n-avg", "2")) == 2  # other settings, same cells: refused, nothing touched
    assert "pass --overwrite" in capsys.readouterr().err and snapshot(folder / "out") == before
    assert main(argv(folder, n_max="1")) == 2  # another grid: its sheet would replace this one's
    assert "another sweep's" in capsys.readouterr().err and snapshot(folder / "out") == before
    assert main(argv(folder, "--n-avg", "2", "--overwrite")) == 0
    assert "2 edited now" in capsys.readouterr().out and snapshot(folder / "out") != before
    assert main(argv(folder, "--n-avg", "2")) == 0 and "0 edited now, 2 kept" in capsys.readouterr().out


def test_w6_guidance_values_equal_to_six_digits_get_their_own_cells(folder):
    editor = load("tiny-sd3")
    close = [4.0000001, 4.0000002]
    cells = sweep(editor, picture(), "a", "b", folder / "out", [2], close, steps=4, progress=False)
    assert len({c.path for c in cells}) == 2 and {embedded_record(c.path)["tar_guidance"] for c in cells} == set(close)
    assert cells[0].path.name == cell_name(2, 4.0000001, 42) == "n_max-2_guidance-4.0000001_seed-42.png"
    again = sweep(editor, picture(), "a", "b", folder / "out", [2], close, steps=4, progress=False)
    assert not any(c.made for c in again)  # and it resumes


def test_w8_two_sweeps_at_once_do_each_cell_once(folder):
    command = [sys.executable, "-m", "flowedit", *argv(folder)[0:]]
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    records = read_records(folder / "out" / "results.jsonl")
    assert sorted(r["code"] for r in records) == ["n_max-2_guidance-4.0_seed-42", "n_max-3_guidance-4.0_seed-42"]
    assert (folder / "out" / SHEET).is_file()


def test_w9_a_killed_sweeps_temporaries_are_removed(folder):
    (folder / "out" / "cells").mkdir(parents=True)
    stale = [folder / "out" / "cells" / ".n_max-2_guidance-4.0_seed-42.123.0123abcd.png"]
    stale.append(folder / "out" / ".sheet.123.89abcdef.png")
    for path in stale:
        path.write_bytes(b"half a file")
    assert main(argv(folder)) == 0
    assert not any(path.exists() for path in stale)


def test_u2_cells_are_read_back_within_the_sweeps_limits(tmp_path):
    editor = load("tiny-sd3")
    cells = sweep(editor, picture(), "a", "b", tmp_path, [2], [4.0], steps=4, progress=False)
    tight = ImageLimits(max_pixels=SIZE[0] * SIZE[1] - 1)
    with pytest.raises(ValueError, match="over the limit"):  # the limits handed in are the ones that read the cells
        contact_sheet(picture(), cells, [2], [4.0], [42], steps=4, limits=tight)
    assert isinstance(cells[0], SweepCell)


def test_u3_an_out_dir_that_is_a_file_stops_before_the_model_loads(folder, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a model that cannot load here: the out-dir is refused first
    (folder / "file").write_text("x")
    command = argv(folder, out="file")
    command[command.index("tiny-sd3")] = "stabilityai/stable-diffusion-3-medium-diffusers"
    assert main(command) == 2 and "exists and is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["edit", "sweep"])
def test_t1_w5_prompts_and_feather_are_refused_before_the_model_loads(folder, capsys, command):
    if command == "edit":
        base = ["edit", "--image", str(folder / "in.png"), "--out", str(folder / "o.png"), *FAST, "--n-max", "2"]
    else:
        base = argv(folder)[:3] + argv(folder)[7:]
    prompts = ["--source", "a cat", "--target", "a dog"]
    assert main([*base, "--source", "a \udcff cat", "--target", "a dog"]) == 2
    assert "--source holds a byte that is not UTF-8" in capsys.readouterr().err
    for feather in ("3", "nan"):
        assert main([*base, *prompts, "--feather", feather]) == 2
        assert "feather" in capsys.readouterr().err
    assert not (folder / "o.png").exists() and not (folder / "out").exists()


def test_every_command_writes_one_record_schema_with_one_fingerprint(folder):
    (folder / "edits.yaml").write_text(
        "- input_img: in.png\n  source_prompt: a cat\n  target_prompts: [a dog]\n  target_codes: [dog]\n"
    )
    one = ["--steps", "4", "--n-max", "2", "--seed", "42"]
    assert (
        main(
            [
                "edit",
                "--image",
                str(folder / "in.png"),
                "--source",
                "a cat",
                "--target",
                "a dog",
                "--out",
                str(folder / "edit.png"),
                "--model",
                "tiny-sd3",
                *one,
            ]
        )
        == 0
    )
    assert main(["run", str(folder / "edits.yaml"), "--out-dir", str(folder / "run"), "--model", "tiny-sd3", *one]) == 0
    assert main(argv(folder, n_max="2")) == 0
    records = [
        embedded_record(folder / "edit.png"),
        embedded_record(folder / "run" / "in" / "dog.png"),
        embedded_record(folder / "out" / "cells" / cell_name(2, 4.0, 42)),
    ]
    shared = set(records[0])
    assert all(set(r) - {"run_seed"} == shared for r in records)  # a batch run also says how its seed was derived
    with Image.open(folder / "in.png") as source:
        assert {r["source_sha256"] for r in records} == {fingerprint([source.convert("RGB")])}
    assert {r["model"] for r in records} == {"tiny-sd3"} and all(len(r["request_id"]) == 16 for r in records)


# -- what a review of the new path found --------------------------------------------------------------------------
def test_a_sweep_waits_for_another_on_its_folder_then_keeps_that_ones_sheet(folder, monkeypatch):
    """Two sweeps with other grids on one folder: the second waits for the first (cells, sheet and all) and then
    refuses to replace its sheet, instead of both exiting 0 with one sheet lost."""
    from flowedit.runs import sweeps as module

    editor = load("tiny-sd3")
    other = [sys.executable, "-m", "flowedit", *argv(folder, n_max="3")]
    started = []

    def slow_sheet(*args, **kwargs):  # while this sweep draws its sheet, another one starts
        started.append(subprocess.Popen(other, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        with pytest.raises(subprocess.TimeoutExpired):
            started[0].wait(timeout=8)  # it waits for this sweep
        return real(*args, **kwargs)

    real = module.contact_sheet
    monkeypatch.setattr(module, "contact_sheet", slow_sheet)
    sweep(editor, folder / "in.png", "a cat", "a dog", folder / "out", [2], [4.0], steps=4, progress=False)
    _, err = started[0].communicate(timeout=120)
    assert started[0].returncode == 2 and b"another sweep's" in err
    assert embedded_record(folder / "out" / SHEET)["n_max"] == [2]


def test_an_input_inside_the_out_dir_is_never_overwritten(folder, capsys):
    (folder / "out").mkdir()
    picture().save(folder / "out" / SHEET)
    command = argv(folder, "--overwrite")
    command[command.index(str(folder / "in.png"))] = str(folder / "out" / SHEET)
    before = (folder / "out" / SHEET).read_bytes()
    assert main(command) == 2 and "would overwrite its input" in capsys.readouterr().err
    assert (folder / "out" / SHEET).read_bytes() == before


@pytest.mark.parametrize("where", [SHEET, "cells/n_max-2_guidance-4.0_seed-42.png"])
def test_a_folder_where_an_output_goes_is_refused_before_any_work_even_with_overwrite(folder, capsys, where):
    (folder / "out" / where).mkdir(parents=True)
    assert main(argv(folder, "--overwrite")) == 2
    assert "is a folder where" in capsys.readouterr().err
    assert not (folder / "out" / "results.jsonl").exists()


def test_the_sheet_reads_the_sweeps_own_cells_whatever_the_input_limits(folder, capsys):
    picture().save(folder / "small.jpg", quality=30)
    size_mb = (folder / "small.jpg").stat().st_size / 2**20 * 1.01
    command = argv(folder, "--max-file-size", f"{size_mb:.6f}")
    command[command.index(str(folder / "in.png"))] = str(folder / "small.jpg")
    assert main(command) == 0, capsys.readouterr().err  # the cells (PNGs) are larger than the source JPEG
    assert (folder / "out" / SHEET).is_file()


def test_python_arguments_are_checked_before_anything_is_written(folder):
    editor = load("tiny-sd3")
    cases = [
        ({"source_prompt": None}, "source_prompt must be a string"),
        ({"target_prompt": "a \udcff"}, "target_prompt holds a byte that is not UTF-8"),
        ({"seed": 7}, r"seed is swept: give its values as seeds=\[...\]"),
        ({"out_dir": None}, "out_dir must name a folder"),
    ]
    for change, message in cases:
        call = {"source_prompt": "a", "target_prompt": "b", "out_dir": folder / "py"} | change
        seed = {"seed": call.pop("seed")} if "seed" in call else {}
        with pytest.raises(ValueError, match=message):
            sweep(
                editor,
                picture(),
                call["source_prompt"],
                call["target_prompt"],
                call["out_dir"],
                [2],
                [4.0],
                steps=4,
                progress=False,
                **seed,
            )
    assert not (folder / "py").exists()
    cells = sweep(
        editor, picture(), "a", "b", folder / "py", np.array([2]), np.array([4.0]), steps=np.int64(4), progress=False
    )  # numpy lists and integers are what they mean
    assert [c.n_max for c in cells] == [2]


def test_the_same_request_spelled_otherwise_resumes(folder, capsys):
    assert main(argv(folder, "--n-avg", "1")) == 0  # n_avg 1 is the default
    assert main(argv(folder)) == 0 and "0 edited now, 2 kept" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("out", "message"), [("", "--out-dir is empty"), ("afile/sub", "--out-dir {folder}/afile/sub: cannot create it")]
)
def test_an_out_dir_that_cannot_be_made_is_named(folder, capsys, out, message):
    (folder / "afile").write_text("x")
    command = argv(folder)
    command[command.index("--out-dir") + 1] = out if not out else str(folder / out)
    assert main(command) == 2 and message.format(folder=folder) in capsys.readouterr().err


def test_a_truncated_gif_and_a_huge_feather_are_one_line_before_the_model_loads(folder, capsys):
    frames = [Image.new("RGB", (32, 32), (40 * k, 0, 0)) for k in range(5)]
    frames[0].save(folder / "clip.gif", save_all=True, append_images=frames[1:], duration=100)
    data = (folder / "clip.gif").read_bytes()
    (folder / "cut.gif").write_bytes(data[: 2 * len(data) // 3])
    video = ["edit", "--model", "tiny-wan", "--video", str(folder / "cut.gif"), "--source", "a", "--target", "b"]
    assert main([*video, "--out", str(folder / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert "cut.gif" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    Image.new("L", SIZE, 255).save(folder / "mask.png")
    image = ["edit", "--model", "tiny-sd3", "--image", str(folder / "in.png"), "--source", "a", "--target", "b"]
    assert main([*image, "--out", str(folder / "o.png"), "--mask", str(folder / "mask.png"), "--feather", "1e308"]) == 2
    assert "--feather 1e+308 is over 4096 pixels" in capsys.readouterr().err


def test_sheet_labels_are_exact_and_option_errors_are_bounded(folder, capsys):
    editor = load("tiny-sd3")
    cells = sweep(editor, picture(), "a", "b", folder / "out", [2], [7.5000001, 7.5000002], steps=4, progress=False)
    assert len({c.path for c in cells}) == 2  # and the sheet draws: its labels carry repr(guidance)
    with pytest.raises(SystemExit):
        main(argv(folder, "--seeds", "9" * 5000))
    assert len(capsys.readouterr().err.splitlines()[-1]) < 600  # not the 5000 digits


def test_edit_to_file_refuses_an_output_name_before_the_edit(tmp_path):
    from flowedit.media import read_source
    from flowedit.runs import EditRequest, edit_to_file

    editor = load("tiny-sd3")
    source = read_source(picture(), "image", editor.limits)
    request = EditRequest.of("tiny-sd3", "float32", source, "a", "b", editor.settings(steps=4, n_max=2))

    class Untouchable:
        def render(self, *args, **kwargs):
            raise AssertionError("the edit ran")

    with pytest.raises(ValueError, match="not an image file name"):
        edit_to_file(Untouchable(), request, source, tmp_path / "x.mp4")
