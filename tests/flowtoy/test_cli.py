"""The flowtoy command line: figure, sweep, animation and table; one readable line for bad input."""

import json
import signal
import subprocess
import sys
import time

import matplotlib
import matplotlib.figure
import pytest
from PIL import Image

import flowtoy.cli
from flowtoy.cli import compare, main

matplotlib.use("Agg")

METHODS = ["flowedit", "flowedit-mean", "inversion (euler)", "inversion (exact)", "sdedit"]


def test_compare_rows_and_what_they_show():
    rows = {r["method"]: r for r in compare(n=400, steps=20, seed=3)}
    assert list(rows)[:5] == METHODS and list(rows)[5] == "ot (400 pts)"
    assert rows["flowedit"]["crossing"] == 0.0
    assert rows["sdedit"]["cost"] > rows["flowedit"]["cost"]


def test_figure3_writes_the_figure_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "sub" / "fig.png"
    assert main(["figure3", "--out", str(out), "--n", "150", "--steps", "10", "--pairs", "5", "--dpi", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["method", "cost"]
    assert [line[:20].strip() for line in lines[1:6]] == METHODS
    assert (
        lines[-2] == "(300 source points, 10 steps on a uniform grid, n_max 10, n_avg 1, std 1, equal weights, seed 0)"
    )
    assert lines[-1] == f"wrote {out}"
    assert Image.open(out).size[0] > 100
    assert [p.name for p in out.parent.iterdir()] == ["fig.png"]  # no temporary file left behind


def test_sweep_writes_maps_and_numbers(tmp_path):
    assert main(["sweep", "--out", str(tmp_path), "--n", "100", "--steps", "2", "20", "--weights", "0.5", "0.8"]) == 0
    numbers = json.loads((tmp_path / "sweep.json").read_text())
    assert numbers["steps"] == [2, 20] and numbers["weights"] == [0.5, 0.8]
    assert len(numbers["crossing"]["inversion"]) == 2 and len(numbers["crossing"]["flowedit"][0]) == 2
    assert (tmp_path / "regime_maps.png").stat().st_size > 0


def test_animate_writes_a_gif_with_one_frame_per_step(tmp_path):
    out = tmp_path / "edit.gif"
    assert main(["animate", "--out", str(out), "--n", "50", "--steps", "6", "--method", "inversion"]) == 0
    assert Image.open(out).n_frames == 1 + 2 * 6  # start, 6 inversion steps up, 6 sampling steps down


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--n", "0"], "--n must be an integer >= 1, got 0"),
        (["compare", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
        (["figure3", "--steps", "10", "--n-max", "11"], "n_max = 11 exceeds the number of steps"),
        (["figure3", "--weights", "0.5", "0.6"], "weights must sum to 1"),
        (["figure3", "--std", "-1"], "--std must be a finite number > 0 and <= 1000, got -1.0"),
        (["sweep", "--weights", "1.2"], "--weights must be a finite number > 0 and < 1, got 1.2"),
        (["animate", "--n-avg", "0"], "--n-avg must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # in-process: the same main() a console script runs (a real process: below)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("flowtoy: error:") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--steps", "1000000000"], "--steps 1000000000 is over the limit of 10000"),
        (["compare", "--steps", "10000000"], "--steps 10000000 is over the limit of 10000"),
        (["figure3", "--n", "1000000000"], "--n 1000000000 is over the limit of 1000000"),
        (["sweep", "--steps", "2", "20000"], "--steps 20000 is over the limit of 10000"),
        (["animate", "--n-avg", "100000"], "--n-avg 100000 is over the limit of 1000"),
    ],
)
def test_sizes_that_would_run_for_hours_are_refused_at_once(argv, message, tmp_path, capsys):
    assert main([*argv, *(["--out", str(tmp_path / "x")] if argv[0] != "compare" else [])]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"flowtoy: error: {message}; a larger run would take hours or run out of memory"
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "flowtoy", "figure3", "--out", str(blocker / "fig.png"), "--n", "20", "--steps", "2"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "cannot write output" in result.stderr and "Traceback" not in result.stderr


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def half_written_then_interrupted(fig, path, **kwargs):
    path.write_bytes(b"\x89PNG half")  # the hidden temporary file, partly written
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("target", "replacement"),
    [(flowtoy.cli, {"compare": interrupt}), (matplotlib.figure.Figure, {"savefig": half_written_then_interrupted})],
    ids=["while editing", "while saving"],
)
def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_file(target, replacement, tmp_path, capsys, monkeypatch):
    for name, value in replacement.items():
        monkeypatch.setattr(target, name, value)
    out = tmp_path / "fig.png"
    assert main(["figure3", "--out", str(out), "--n", "20", "--steps", "2", "--dpi", "20"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "flowtoy: interrupted\n" and captured.out == ""
    assert list(tmp_path.iterdir()) == []  # neither the figure nor its hidden temporary file


def test_sigint_in_a_real_process(tmp_path):
    """A real Ctrl-C (SIGINT) in the middle of a long figure3 run: status 130, one line, no file.

    The process says when ``main`` is about to run, after the heavy imports: a SIGINT that lands
    inside an import (torch, scipy, matplotlib: seconds on a busy machine) can surface as another
    error than KeyboardInterrupt, before or outside ``main``.
    """
    start = (
        "import sys, scipy.integrate, scipy.optimize, flowtoy.plot; from flowtoy.cli import main; "  # imports first
        "print('started', flush=True); sys.exit(main(sys.argv[1:]))"
    )
    argv = ["figure3", "--out", str(tmp_path / "fig.png"), "--n", "200000"]  # minutes of work
    process = subprocess.Popen(
        [sys.executable, "-c", start, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline() == "started\n"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130, err[-2000:]
    assert err == "flowtoy: interrupted\n" and out == ""
    assert list(tmp_path.iterdir()) == []


def _never_run(args):
    raise AssertionError("the command ran although an option was bad")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "--dpi", "0"], "--dpi must be an integer >= 1, got 0"),
        (["sweep", "--weights", "0.5", "1.5"], "--weights must be a finite number > 0 and < 1, got 1.5"),
        (["figure3", "--pairs", "-1"], "--pairs must be an integer >= 0, got -1"),
        (
            ["figure3", "--out", "fig"],
            "--out fig has no suffix; the suffix names the format: use e.g. fig.png (one of ",
        ),
        (["figure3", "--out", "fig.xyz"], "--out fig.xyz: cannot write .xyz files; use a suffix among "),
        (["digits", "--out", "grid"], "--out grid has no suffix; the suffix names the format: use e.g. grid.png"),
        (["animate", "--out", "edit"], "--out edit has no suffix; the suffix names the format: use e.g. edit.gif"),
        (["animate", "--fps", "0"], "--fps must be an integer >= 1, got 0"),
        (["digits", "--n-max", "60"], "n_max = 60 exceeds the number of steps (50)"),
        (["digits", "--source", "3", "--target", "3"], "--source and --target are both 3"),
        (["digits", "--target", "11"], "a digit label must be an integer from 0 to 9, got 11"),
        (
            ["compare", "--seed", "18446744073709551616"],
            "--seed 18446744073709551616 is over the limit of 9223372036854775807; "
            "seeds are integers from 0 to 2**63 - 1",
        ),
        (["compare", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
        (["compare", "--std", "nan"], "--std must be a finite number > 0 and <= 1000, got nan"),
    ],
)
def test_every_option_is_checked_before_anything_runs_or_is_created(argv, message, tmp_path, capsys, monkeypatch):
    """W12, U5, U7: a bad option is one line naming it, before any work and before any folder or file exists."""
    monkeypatch.chdir(tmp_path)
    for runner in ("_figure3", "_sweep", "_animate", "_digits", "_compare"):
        monkeypatch.setattr(flowtoy.cli, runner, _never_run)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flowtoy: error: {message}") and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_into_a_file_is_refused_before_it_runs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(flowtoy.cli, "_sweep", _never_run)
    (tmp_path / "taken").write_text("")
    assert main(["sweep", "--out", str(tmp_path / "taken")]) == 2
    assert "is a file; the sweep writes a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [
        lambda tmp: PermissionError(13, "Permission denied", str(tmp)),
        lambda tmp: ValueError(f"cannot write {tmp}: no space left"),
    ],
    ids=["OSError", "ValueError"],
)
def test_errors_while_writing_name_the_output_never_the_temporary_file(error, tmp_path, capsys, monkeypatch):
    """U6: whatever the writer says about the hidden temporary file is said of the output; no folder is left."""

    def failing_savefig(fig, path, **kwargs):
        raise error(path)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", failing_savefig)
    out = tmp_path / "new" / "fig.png"
    code = main(["figure3", "--out", str(out), "--n", "20", "--steps", "2", "--dpi", "20"])
    err = capsys.readouterr().err
    assert code in (1, 2) and str(out) in err and ".fig." not in err, err
    assert list(tmp_path.iterdir()) == []  # the folder made for the output is gone again


def test_write_atomically_translates_only_errors_that_name_the_temporary_file(tmp_path):
    from flowedit._files import write_atomically

    def raising(err):
        def write(tmp):
            raise err(tmp)

        return write

    out = tmp_path / "a" / "b" / "out.json"
    with pytest.raises(IsADirectoryError) as info:
        write_atomically(out, raising(lambda tmp: IsADirectoryError(21, "Is a directory", str(tmp))))
    assert info.value.filename == str(out) and info.value.errno == 21 and info.value.__cause__ is not None
    with pytest.raises(KeyError, match="unrelated"):
        write_atomically(out, raising(lambda tmp: KeyError("unrelated")))
    assert list(tmp_path.iterdir()) == []
    assert write_atomically(out, lambda tmp: tmp.write_text("{}")).read_text() == "{}"


def test_the_options_derive_from_the_settings():
    """Each option's type, help and bounds are the setting's; a command only chooses its default."""
    import dataclasses
    import inspect

    import flowtoy
    from flowtoy.cli import COMMAND_DEFAULTS, _parser

    meta = {f.name: f.metadata["setting"] for f in dataclasses.fields(flowtoy.Settings)}
    commands = _parser()._subparsers._group_actions[0].choices
    seen = set()
    for command, parser in commands.items():
        for action in parser._actions:
            name = action.dest
            if name not in meta or action.nargs is not None:  # sweep's --steps and --weights are lists
                continue
            seen.add(name)
            assert action.type is meta[name].kind, (command, name)
            default = COMMAND_DEFAULTS[command].get(name, getattr(flowtoy.Settings(), name))
            assert action.default == default, (command, name)
    strengths = {"zeta", "guidance", "eta", "omega"}  # the editors after FlowEdit
    assert seen == {"n", "std", "seed", "steps", "n_max", "n_avg", "pairs", "dpi", "fps"} | strengths
    # flowtoy.edit takes its defaults from the same object; n_max unset means T everywhere
    defaults = {k: p.default for k, p in inspect.signature(flowtoy.edit).parameters.items()}
    settings = flowtoy.Settings()
    assert {k: defaults[k] for k in ("steps", "n_max", "n_min", "n_avg", "nodes")} == {
        k: getattr(settings, k) for k in ("steps", "n_max", "n_min", "n_avg", "nodes")
    }
    assert settings.n_max is None and settings.edit_steps == settings.steps
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.steps = 3
