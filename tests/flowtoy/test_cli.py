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
        (["compare", "--n", "0"], "n must be at least 1"),
        (["compare", "--steps", "0"], "steps must be a positive integer"),
        (["figure3", "--steps", "10", "--n-max", "11"], "n_max = 11 exceeds the number of steps"),
        (["figure3", "--weights", "0.5", "0.6"], "weights must sum to 1"),
        (["figure3", "--std", "-1"], "std must be positive"),
        (["sweep", "--weights", "1.2"], "strictly between 0 and 1"),
        (["animate", "--n-avg", "0"], "n_avg must be an integer >= 1"),
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
    assert err == f"flowtoy: error: {message}; the command would run for hours or run out of memory"
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
