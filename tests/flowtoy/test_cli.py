"""The flowtoy command line: the comparison table, and one readable line for bad input."""

import subprocess
import sys

import pytest

from flowtoy.cli import compare, main


def test_compare_prints_a_table_where_flowedit_does_not_cross(capsys):
    assert main(["compare", "--n", "400", "--steps", "20", "--seed", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["method", "cost"]
    assert [line.split()[0] for line in out[1:]] == ["flowedit", "inversion", "inversion", "sdedit"]
    rows = {r["method"]: r for r in compare(n=400, steps=20, seed=3)}
    assert rows["flowedit"]["crossing"] == 0.0
    assert rows["sdedit"]["cost"] > rows["flowedit"]["cost"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--n", "0"], "n must be at least 1"),
        (["compare", "--steps", "0"], "steps must be a positive integer"),
        (["compare", "--steps", "10", "--n-max", "11"], "n_max = 11 exceeds the number of steps"),
        (["compare", "--weights", "0.5", "0.6"], "weights must sum to 1"),
        (["compare", "--std", "-1"], "std must be positive"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(argv, message):
    result = subprocess.run([sys.executable, "-m", "flowtoy", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("flowtoy: error:") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
