"""Execute every teaching notebook in ``notebooks/``, then grade its exercises both ways.

A cell that raises (an ``assert`` on a stated number included) fails the test with that cell's error.
Exercises follow one protocol: an exercise cell (metadata ``"exercise": NAME``) ships blank, and the
cells that grade it (metadata ``"check": NAME``) print one verdict line through :mod:`flowtoy.exercises`.
Run as committed, every check must say "not yet" politely (no error, no traceback); then, in the same
kernel, a typical wrong answer (the ``# %% wrong: NAME`` section of ``notebooks/solutions/<notebook>.py``) must
be caught the same way, and the reference solution (its ``# %% exercise: NAME`` section) must pass every check
cell of ``NAME``.

The rendered copies in ``docs/notebooks/`` (``scripts/notebooks --render``) let the notebooks be read
without running them; a test checks each is current (rendered from the notebook's present cells).

Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel) and a ``python3`` kernelspec that runs this
interpreter. Each notebook runs in a temporary directory with the non-interactive Agg backend, so nothing
is written into the repository.
"""

import contextlib
import hashlib
import json
import re
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

from flowtoy.exercises import NOT_YET, PASS

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted(ROOT.joinpath("notebooks").glob("*.ipynb"))
SOLUTIONS = ROOT / "notebooks" / "solutions"
RENDERED = ROOT / "docs" / "notebooks"
GRADED = {"01", "02", "03", "04", "05", "06"}  # notebooks held to the exercise protocol (at least two exercises)
RENDER = [p for p in NOTEBOOKS if p.name[:2] in GRADED or RENDERED.joinpath(p.name).exists()]
SECTION = re.compile(r"^# %% (exercise|wrong): (\w+)\n", re.M)


def source_digest(nb) -> str:
    """sha256 of a notebook's cell types and sources: what a rendered copy must have been made from."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def solutions(path: Path) -> dict[str, dict[str, str]]:
    """The kept answers of one notebook: {"exercise": {name: reference solution}, "wrong": {name: a wrong answer}}."""
    parts = SECTION.split(SOLUTIONS.joinpath(path.stem + ".py").read_text())
    kept = {"exercise": {}, "wrong": {}}
    for kind, name, code in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        kept[kind][name] = code
    return kept


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_notebooks_found_in_order_with_their_solutions_and_checkpoints_ignored():
    assert {p.name[:3] for p in NOTEBOOKS} >= {"01_", "02_", "03_", "04_", "05_"}
    assert all(SOLUTIONS.joinpath(p.stem + ".py").is_file() for p in NOTEBOOKS if p.name[:2] in GRADED)
    assert ".ipynb_checkpoints/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_exercises_grade_blank_wrong_and_solved(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # inherited by the kernel process
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no spin-waiting torch threads (see flowtoy/__init__.py)
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
        f"{path.name} is stored with outputs; strip them before committing"
    )
    exercises = {cell.metadata["exercise"] for cell in nb.cells if "exercise" in cell.metadata}
    checks = {}
    for index, cell in enumerate(nb.cells):
        if "check" in cell.metadata:
            checks.setdefault(cell.metadata["check"], []).append(index)
    kept = solutions(path) if exercises or path.name[:2] in GRADED else {"exercise": {}, "wrong": {}}
    assert exercises == set(checks) == set(kept["exercise"]) and set(kept["wrong"]) <= exercises, (exercises, kept)
    if path.name[:2] in GRADED:  # at least two graded exercises, one of which asks for code
        assert len(exercises) >= 2 and any("def " in kept["exercise"][name] for name in exercises)
    if path.name[:2] in {"01", "02", "03", "04", "05"}:  # these keep a typical wrong answer for every exercise
        assert set(kept["wrong"]) == exercises

    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        tic = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError with the failing cell and its error
        seconds = time.perf_counter() - tic
        assert seconds < 20, f"{path.name} ran for {seconds:.1f} s; a teaching notebook runs in 20 s or less"
        for name, indices in checks.items():
            for index in indices:  # blank: every check says "not yet", without an error
                out = text_of(nb.cells[index])
                assert NOT_YET in out and PASS not in out, (name, out)
                assert not any(o.output_type == "error" for o in nb.cells[index].outputs)
        for kind in ("wrong", "exercise"):  # a wrong answer is caught (by some check), the kept one passes them all
            for name in sorted(kept[kind]):
                nb.cells.append(nbformat.v4.new_code_cell(kept[kind][name]))
                client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
                said = []
                for index in checks[name]:
                    client.execute_cell(nb.cells[index], index)  # raises if the checker raised
                    said.append(text_of(nb.cells[index]))
                if kind == "wrong":
                    assert any(NOT_YET in out and PASS not in out for out in said), (name, said)
                else:
                    assert all(PASS in out and NOT_YET not in out for out in said), (name, said)
    print(f"{path.name}: {seconds:.1f} s")


@pytest.mark.parametrize("path", RENDER, ids=[p.stem for p in RENDER])
def test_the_rendered_copy_is_current(path: Path):
    """docs/notebooks/ holds each notebook executed, with its figures: rebuilt by `scripts/notebooks --render`."""
    rendered = RENDERED / path.name
    assert rendered.is_file(), f"{rendered} is missing: run scripts/notebooks --render"
    copy = nbformat.read(rendered, as_version=4)
    assert copy.metadata.get("rendered_from") == source_digest(nbformat.read(path, as_version=4)), (
        f"{rendered} is out of date: run scripts/notebooks --render"
    )
    outputs = [o for cell in copy.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not any(o.output_type == "error" for o in outputs)
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_the_environment_opens_the_notebooks_in_jupyterlab_with_widgets():
    import subprocess
    import sys

    import ipywidgets

    assert int(ipywidgets.__version__.split(".")[0]) >= 8
    # JupyterLab runs (its version heads the listing), with the lab extension that renders widgets such as
    # flowtoy.explore()
    extensions = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True
    )
    listing = extensions.stdout + extensions.stderr
    version = [line for line in listing.splitlines() if line.startswith("JupyterLab v")]
    assert extensions.returncode == 0 and version and int(version[0].removeprefix("JupyterLab v").split(".")[0]) >= 4
    manager = [line for line in listing.splitlines() if "jupyterlab-manager" in line]
    assert manager and "enabled" in manager[0] and "OK" in manager[0], listing


@contextlib.contextmanager
def served(tmp_path: Path, command: list[str]):
    """``command`` (`scripts/notebooks`, or JupyterLab itself) serving on a free port; yields its contents URL."""
    import os
    import signal
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    args = [*command, "--no-browser", "--port", str(port), "--ServerApp.token=", "--ServerApp.ip=127.0.0.1"]
    server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/contents"
    try:
        deadline, up = time.monotonic() + 90, False
        while time.monotonic() < deadline and server.poll() is None and not up:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    up = True
            except OSError:
                time.sleep(0.5)
        assert up, server.stdout.read().decode()[-2000:] if server.poll() is not None else "no answer"
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_readme_command_starts_jupyterlab_on_the_notebooks(tmp_path):
    """`scripts/notebooks` serves JupyterLab (also as root, as in containers) with the notebooks in it."""
    import urllib.request

    with (
        served(tmp_path, [str(ROOT / "scripts" / "notebooks")]) as url,
        urllib.request.urlopen(url, timeout=5) as response,
    ):
        names = {item["name"] for item in json.load(response)["content"]}
    assert {p.name for p in NOTEBOOKS} <= names


def test_saving_a_course_notebook_in_jupyterlab_keeps_the_code_and_drops_the_outputs(tmp_path):
    """The save hook of `scripts/notebooks`: a student's answers are saved, outputs never reach the tracked files.

    Run with the hook option that `scripts/notebooks` passes, on a JupyterLab serving a temporary folder.
    """
    import os
    import sys
    import urllib.request

    hook = re.search(r"--ContentsManager\.pre_save_hook=\S+", (ROOT / "scripts" / "notebooks").read_text())
    assert hook, "scripts/notebooks no longer installs the save hook"

    folder = tmp_path / "served"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 35\nanswer")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "35"}, execution_count=1)]
    nb.cells[0].execution_count = 1
    body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
    command = [sys.executable, "-m", "jupyterlab", "--notebook-dir", str(folder), hook.group()]
    command += ["--ServerApp.disable_check_xsrf=True"]  # a PUT from this test carries no browser cookie
    command += ["--allow-root"] if os.getuid() == 0 else []
    with served(tmp_path, command) as url:
        for name in ("07_course.ipynb", "my_notes.ipynb"):
            request = urllib.request.Request(f"{url}/{name}", data=body, method="PUT")
            with urllib.request.urlopen(request, timeout=10):
                pass
    course, mine = (nbformat.read(folder / name, as_version=4) for name in ("07_course.ipynb", "my_notes.ipynb"))
    assert course.cells[0].source == "answer = 35\nanswer" and course.cells[0].outputs == []
    assert course.cells[0].execution_count is None
    assert mine.cells[0].outputs[0]["data"] == {"text/plain": "35"}  # not a course notebook: saved as it is
