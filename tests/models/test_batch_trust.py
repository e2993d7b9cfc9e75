"""Batch runs you can trust: outputs confined to --out-dir, resumes that know their settings, crash-safe records."""

import os
import time

import pytest
import yaml
from batch_support import FAST, batch_file, entry, hidden_files, ok_records, run, write_image
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from flowedit.cli import main
from flowedit.media.source import embedded_record, fingerprint
from flowedit.runs import request
from flowedit.runs.jobs import load_jobs
from flowedit.runs.records import append_record, read_records


# -- 1. outputs stay inside --out-dir ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("../../x", "path separator"),
        ("/abs/path/x", "path separator"),
        ("..", "starts with a dot"),
        (".hidden", "starts with a dot"),
        ("a\\b", "path separator"),
        ("x\ny", "control"),
        ("x\u202ey", "control or invisible"),
        ("x" * 101, "longer than 100"),
    ],
)
def test_codes_that_would_leave_the_out_dir_are_refused_before_anything_is_written(folder, capsys, code, why):
    edits = batch_file(folder, entry(codes=["dog", code]))
    assert run(folder, edits) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "entry 1: target code" in err and why in err
    assert not (folder / "out").exists() and sorted(p.name for p in folder.iterdir()) == [
        "a.png",
        "b.png",
        "edits.yaml",
    ]


@given(code=st.text(max_size=120))
@example(code="..")
@example(code="../x")
@example(code="\x00")
def test_any_code_is_refused_or_names_a_file_directly_inside_the_image_folder(tmp_path_factory, code):
    folder = tmp_path_factory.mktemp("codes")
    (folder / "e.yaml").write_text(yaml.safe_dump([entry(codes=[code], prompts=["p"])]))
    try:
        jobs = load_jobs(folder / "e.yaml", folder / "out")
    except ValueError as err:
        assert "e.yaml: entry 1" in str(err) and len(str(err)) < 400
        return
    (job,) = jobs
    assert job.output == folder / "out" / "a" / f"{code}.png" and job.output.parent.parent == folder / "out"
    assert os.path.normpath(job.output) == str(job.output)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=5),
    max_leaves=20,
)
keys = st.sampled_from(["input_img", "init_img", "source_prompt", "target_prompts", "target_codes", "n_max", "steps"])


@given(
    document=st.lists(st.dictionaries(keys, yaml_values, max_size=6) | yaml_values, max_size=4)
    | yaml_values
    | st.text(max_size=200)
)
def test_the_batch_loader_accepts_or_names_the_problem_never_crashes(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("yaml")
    text = document if isinstance(document, str) else yaml.safe_dump(document)
    (folder / "e.yaml").write_text(text)
    try:
        jobs = load_jobs(folder / "e.yaml", folder / "out")
    except ValueError as err:
        assert str(folder / "e.yaml") in str(err) and "\n" not in str(err).strip()
        return
    for job in jobs:
        assert job.output.parent.parent == folder / "out" and job.output.suffix == ".png"


def test_a_symlinked_image_folder_or_results_file_is_never_written_through(folder, capsys, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    edits = batch_file(folder, entry())
    (folder / "out").mkdir()
    (folder / "out" / "a").symlink_to(elsewhere, target_is_directory=True)
    assert run(folder, edits) == 2 and "not a folder inside" in capsys.readouterr().err
    (folder / "out" / "a").unlink()
    (elsewhere / "victim.txt").write_text("keep")
    (folder / "out" / "results.jsonl").symlink_to(elsewhere / "victim.txt")
    assert run(folder, edits) == 2 and "results.jsonl is a symbolic link" in capsys.readouterr().err
    assert (elsewhere / "victim.txt").read_text() == "keep" and list(elsewhere.iterdir()) == [elsewhere / "victim.txt"]


def test_a_symlinked_output_is_replaced_never_followed(folder, capsys, tmp_path_factory):
    victim = tmp_path_factory.mktemp("elsewhere") / "victim.png"
    write_image(victim, 3)
    before = victim.read_bytes()
    (folder / "out" / "a").mkdir(parents=True)
    (folder / "out" / "a" / "dog.png").symlink_to(victim)
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 2 and "a/dog.png: a symbolic link" in capsys.readouterr().err
    assert run(folder, edits, "--overwrite") == 0
    assert not (folder / "out" / "a" / "dog.png").is_symlink() and victim.read_bytes() == before


def test_an_output_that_would_overwrite_an_input_image_is_refused(folder, capsys):
    (folder / "out" / "a").mkdir(parents=True)
    write_image(folder / "out" / "a" / "dog.png", 5)
    edits = batch_file(folder, entry(), entry(image="out/a/dog.png", codes=["cat"]))
    before = (folder / "out" / "a" / "dog.png").read_bytes()
    assert run(folder, edits) == 2 and "would overwrite the input image" in capsys.readouterr().err
    assert (folder / "out" / "a" / "dog.png").read_bytes() == before


# -- 2. a run knows what it resumes -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (["--n-max", "3"], "n_max 2 -> 3"),
        (["--seed", "7"], "run_seed 0 -> 7"),
        (["--method", "sdedit"], "method 'flowedit' -> 'sdedit'"),
        (["--model", "tiny-flux"], "model 'tiny-sd3' -> 'tiny-flux'"),
        ("prompt", "target_prompt 'a dog' -> 'a wolf'"),
    ],
)
def test_a_rerun_with_other_settings_stops_and_overwrite_redoes_it(folder, capsys, change, difference):
    edits = batch_file(folder, entry(codes=["dog", "fox"]))
    assert run(folder, edits) == 0
    out = folder / "out"
    before = {p.name: p.read_bytes() for p in (out / "a").iterdir()}
    if change == "prompt":
        edits, change = batch_file(folder, entry(codes=["dog", "fox"], prompts=["a wolf", "a fox"])), []
    capsys.readouterr()
    assert run(folder, edits, *change) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and difference in err and "pass --overwrite" in err
    assert {p.name: p.read_bytes() for p in (out / "a").iterdir()} == before  # nothing touched
    assert run(folder, edits, *change, "--overwrite") == 0
    redone = 2 if difference.startswith(("n_max", "run_seed", "method", "model")) else 1
    assert f"{redone} edited, {2 - redone} already done" in capsys.readouterr().out
    latest = {r["output"]: r for r in ok_records(out)}
    for png in (out / "a").iterdir():
        assert (
            embedded_record(png)["request_id"] == latest[str(png)]["request_id"]
        )  # the file and its last record agree
    assert run(folder, edits, *change) == 0 and "0 edited, 2 already done" in capsys.readouterr().out


def test_an_output_not_written_by_flowedit_is_not_taken_for_a_finished_edit(folder, capsys):
    edits = batch_file(folder, entry())
    (folder / "out" / "a").mkdir(parents=True)
    write_image(folder / "out" / "a" / "dog.png", 9)
    assert run(folder, edits) == 2 and "not written by flowedit" in capsys.readouterr().err


def test_the_same_edit_gives_the_same_file_and_the_file_carries_its_settings(folder):
    edits = batch_file(folder, entry())
    assert run(folder, edits, out="one") == 0 and run(folder, edits, out="two") == 0
    one, two = (folder / "one" / "a" / "dog.png"), (folder / "two" / "a" / "dog.png")
    assert one.read_bytes() == two.read_bytes()
    own = embedded_record(one)
    assert own["n_max"] == 2 and own["model"] == "tiny-sd3" and own["target_prompt"] == "a dog"
    with Image.open(folder / "a.png") as source:  # the fingerprint of the decoded pixels, as every command's
        assert own["source_sha256"] == fingerprint([source.convert("RGB")])


# -- 3. bounded inputs ----------------------------------------------------------------------------------
def test_unbounded_or_oversize_inputs_are_failed_records_fast(folder, capsys):
    Image.new("L", (5000, 5000)).save(folder / "huge.png")  # a few KB, 25 megapixels
    edits = batch_file(
        folder, entry(image="/dev/zero", codes=["z"]), entry(image="huge.png", codes=["h"]), entry(codes=["dog"])
    )
    assert run(folder, edits, "--max-pixels", "4000000") == 1
    out = capsys.readouterr().out
    errors = {r["code"]: r["error"] for r in read_records(folder / "out" / "results.jsonl") if r["status"] == "failed"}
    assert "not a regular file" in errors["z"] and "5000x5000" in errors["h"] and "--max-pixels" in errors["h"]
    assert "failed: " in out and "zero/z.png" in out and "huge/h.png" in out  # the console names each failure
    assert "1 edited, 0 already done, 2 failed" in out


def test_a_batch_file_that_is_not_a_regular_file_is_refused(folder, capsys):
    assert main(["run", "/dev/zero", "--out-dir", str(folder / "out"), *FAST]) == 2
    assert "not a regular file" in capsys.readouterr().err


# -- 4. results.jsonl that survives crashes ---------------------------------------------------------
def test_a_cut_short_last_line_gets_no_record_glued_to_it_and_readers_skip_it(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text('{"status": "ok", "output": "a"}\n{"status": "ok", "outp')
    append_record(results, {"status": "ok", "output": "b", "cost": float("nan")})
    lines = results.read_text().splitlines()
    assert lines[-1] == '{"status": "ok", "output": "b", "cost": null}'  # strict JSON: no NaN
    with pytest.warns(UserWarning, match="line 2 is damaged"):
        assert [r["output"] for r in read_records(results)] == ["a", "b"]


def test_short_writes_are_completed_and_a_failed_write_is_rolled_back(tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    append_record(results, {"n": 1})
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:5])))  # 5 bytes at a time
    append_record(results, {"n": 2, "text": "x" * 50})
    assert [r["n"] for r in read_records(results)] == [1, 2]
    calls = []

    def full_disk(fd, data):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data[:5]))

    monkeypatch.setattr(os, "write", full_disk)
    size = results.stat().st_size
    with pytest.raises(OSError, match="No space left"):
        append_record(results, {"n": 3, "text": "y" * 50})
    assert results.stat().st_size == size  # the partial line was removed


def test_a_kill_between_the_output_and_its_record_is_healed_on_resume(folder, monkeypatch, capsys):
    edits = batch_file(folder, entry(codes=["dog", "fox"]))
    real = request.append_record

    def killed(results, record):
        if record["status"] == "ok" and record["code"] == "fox":
            raise KeyboardInterrupt  # the process dies after the rename, before the record
        real(results, record)

    monkeypatch.setattr(request, "append_record", killed)
    assert run(folder, edits) == 130
    monkeypatch.setattr(request, "append_record", real)
    out = folder / "out"
    assert sorted(p.name for p in (out / "a").iterdir()) == ["dog.png", "fox.png"]
    assert [r["code"] for r in ok_records(out)] == ["dog"]
    assert run(folder, edits) == 0 and "0 edited, 2 already done" in capsys.readouterr().out
    records = ok_records(out)
    assert sorted(r["code"] for r in records) == ["dog", "fox"]  # exactly one record per finished edit
    assert [r.get("recovered", False) for r in records] == [False, True]
    assert run(folder, edits) == 0 and len(ok_records(out)) == 2  # and it stays that way


# -- 5. interrupts ---------------------------------------------------------------------------------
def test_ctrl_c_exits_130_with_one_line_and_no_partial_output(folder, monkeypatch, capsys):
    from flowedit.models import Editor

    edits = batch_file(folder, entry(codes=["dog", "fox"]))
    real = Editor.decode
    calls = []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(Editor, "decode", interrupted)
    assert run(folder, edits) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "flowedit: interrupted"
    out = folder / "out"
    assert [p.name for p in (out / "a").iterdir()] == ["dog.png"] and not hidden_files(out)
    assert [r["code"] for r in ok_records(out)] == ["dog"]  # finished work stays recorded


# -- found by trying to break it ------------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["- input_img: a.png", "  source_prompt: a", "  target_codes: [c]", "  x0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines.append("  target_prompts: *a9")
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="target_prompts' must be a non-empty list of non-empty strings") as info:
        load_jobs(tmp_path / "bomb.yaml", tmp_path / "out")
    assert time.perf_counter() - start < 5 and len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_img": "results.jsonl.png"}, "it is the name of the run's results.jsonl"),
        ({"target_codes": ["Dog", "dog"], "target_prompts": ["a", "b"]}, "repeats"),
        ({"target_codes": ["dog."]}, "ends with a dot"),
        ({"target_codes": ["a\u2028b"]}, "control or invisible"),
        ({"input_img": "x\x1b]0;PWNED\x07/cat.png"}, "holds control characters"),
        ({"source_prompt": "x" * 3000}, "prompt of 3000 characters"),
    ],
)
def test_names_and_prompts_that_would_break_the_out_dir_or_the_console_are_refused(tmp_path, changes, message):
    (tmp_path / "e.yaml").write_text(yaml.safe_dump([entry() | changes]))
    with pytest.raises(ValueError, match=message) as info:
        load_jobs(tmp_path / "e.yaml", tmp_path / "out")
    assert "\x1b" not in str(info.value) and "e.yaml: entry 1" in str(info.value)


def test_foreign_or_deeply_nested_lines_in_results_are_skipped(folder, capsys):
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 0
    results = folder / "out" / "results.jsonl"  # its one record replaced by a foreign and a damaged line
    results.write_text('{"status": "ok", "output": ["x"], "request_id": "y"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    capsys.readouterr()
    assert run(folder, edits) == 0  # the output's record is recovered from the PNG
    captured = capsys.readouterr()
    assert "flowedit: warning:" in captured.err and "line 2 is damaged" in captured.err
    assert "Traceback" not in captured.err and "0 edited, 1 already done" in captured.out
    assert [r.get("recovered") for r in ok_records(folder / "out")][-1] is True


def test_a_hard_linked_results_file_or_an_out_dir_that_is_a_file_is_refused(folder, capsys, tmp_path_factory):
    victim = tmp_path_factory.mktemp("elsewhere") / "victim.txt"
    victim.write_text("keep\n")
    (folder / "out").mkdir()
    os.link(victim, folder / "out" / "results.jsonl")
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 2 and "hard link" in capsys.readouterr().err
    assert victim.read_text() == "keep\n"
    assert run(folder, edits, out="edits.yaml") == 2 and "is not a folder" in capsys.readouterr().err


def test_a_missing_input_leaves_its_finished_output_and_record_alone(folder, capsys):
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 0
    before = (folder / "out" / "results.jsonl").read_text()
    (folder / "a.png").rename(folder / "gone.png")
    assert run(folder, edits) == 1
    assert "output kept, not checked: ValueError: image not found" in capsys.readouterr().out
    assert (folder / "out" / "results.jsonl").read_text() == before


def test_a_live_run_with_other_settings_keeps_the_out_dir_to_itself(folder, capsys):
    import fcntl

    edits = batch_file(folder, entry())
    (folder / "out" / ".flowedit-locks").mkdir(parents=True)
    fd = os.open(folder / "out" / ".flowedit-locks" / "run-0123456789abcdef", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as a live run of another profile holds it
        assert run(folder, edits) == 2
        assert "another run with other settings" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert run(folder, edits) == 0  # once it has ended, the folder is free


def test_a_resumed_run_removes_a_killed_writer_s_temporary_files(folder):
    edits = batch_file(folder, entry())
    assert run(folder, edits) == 0
    stale = folder / "out" / "a" / ".dog.99999.0123abcd.png"
    stale.write_bytes(b"half an image")
    assert run(folder, edits) == 0 and not stale.exists()
