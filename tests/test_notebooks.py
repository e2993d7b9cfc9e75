"""Execute every teaching notebook in ``notebooks/``, then grade its exercises both ways.

A cell that raises (an ``assert`` on a stated number included) fails the test with that cell's error.
Exercises follow one protocol: an exercise cell (metadata ``"exercise": NAME``) ships blank, and the
cells that grade it (metadata ``"check": NAME``) print one verdict line through :mod:`flowtoy.exercises`.
Run as committed, every check must say "not yet" politely (no error, no traceback); then, in the same
kernel, the reference solution of ``NAME`` from ``notebooks/solutions/<notebook>.py`` (its
``# %% exercise: NAME`` section) is run and every check cell of ``NAME`` is run again: now it must pass.

The rendered copies in ``docs/notebooks/`` (``scripts/notebooks --render``) let the notebooks be read
without running them; a test checks each is current (rendered from the notebook's present cells).

Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel) and a ``python3`` kernelspec that runs this
interpreter. Each notebook runs in a temporary directory with the non-interactive Agg backend, so nothing
is written into the repository.
"""

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
GRADED = {"01", "02", "03", "04", "05"}  # notebooks held to the exercise protocol (at least two exercises)
RENDER = [p for p in NOTEBOOKS if p.name[:2] in GRADED or RENDERED.joinpath(p.name).exists()]
SECTION = re.compile(r"^# %% exercise: (\w+)\n", re.M)


def source_digest(nb) -> str:
    """sha256 of a notebook's cell types and sources: what a rendered copy must have been made from."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def solutions(path: Path) -> dict[str, str]:
    """The reference solutions of one notebook, by exercise name."""
    parts = SECTION.split(SOLUTIONS.joinpath(path.stem + ".py").read_text())
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_notebooks_found_in_order_with_their_solutions_and_checkpoints_ignored():
    assert {p.name[:3] for p in NOTEBOOKS} >= {"01_", "02_", "03_", "04_", "05_"}
    assert all(SOLUTIONS.joinpath(p.stem + ".py").is_file() for p in NOTEBOOKS if p.name[:2] in GRADED)
    assert ".ipynb_checkpoints/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_exercises_grade_blank_and_solved(
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
    kept = solutions(path) if exercises or path.name[:2] in GRADED else {}
    assert exercises == set(checks) == set(kept), (exercises, set(checks), set(kept))
    if path.name[:2] in GRADED:  # at least two graded exercises, one of which asks for code
        assert len(exercises) >= 2 and any("def " in kept[name] for name in exercises)

    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        tic = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError with the failing cell and its error
        seconds = time.perf_counter() - tic
        for name, indices in checks.items():
            for index in indices:  # blank: every check says "not yet", without an error
                out = text_of(nb.cells[index])
                assert NOT_YET in out and PASS not in out, (name, out)
                assert not any(o.output_type == "error" for o in nb.cells[index].outputs)
        for name in sorted(exercises):
            nb.cells.append(nbformat.v4.new_code_cell(kept[name]))
            client.execute_cell(nb.cells[-1], len(nb.cells) - 1)
            for index in checks[name]:
                cell = nb.cells[index]
                client.execute_cell(cell, index)
                assert PASS in text_of(cell) and NOT_YET not in text_of(cell), (name, text_of(cell))
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


def test_the_readme_command_starts_jupyterlab_on_the_notebooks(tmp_path):
    """`scripts/notebooks` serves JupyterLab (also as root, as in containers) with the notebooks in it."""
    import os
    import signal
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = ROOT / "scripts" / "notebooks"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    args = [str(script), "--no-browser", "--port", str(port), "--ServerApp.token=", "--ServerApp.ip=127.0.0.1"]
    server = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, listing = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None and listing is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as response:
                    listing = json.load(response)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, server.stdout.read().decode()[-2000:] if server.poll() is not None else "no answer"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in NOTEBOOKS} <= names
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
