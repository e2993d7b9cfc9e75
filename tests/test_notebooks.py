"""Execute every teaching notebook in ``notebooks/``; a cell that raises (an ``assert`` on a stated number
included) fails the test with that cell's error.

Needs the ``notebooks`` extra (nbformat, nbclient, ipykernel) and a ``python3`` kernelspec that runs this
interpreter. Each notebook runs in a temporary directory with the non-interactive Agg backend, so nothing
is written into the repository.
"""

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted(Path(__file__).parents[1].joinpath("notebooks").glob("*.ipynb"))


def test_notebooks_found():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # inherited by the kernel process
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # no spin-waiting torch threads (see flowtoy/__init__.py)
    monkeypatch.chdir(tmp_path)
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
        f"{path.name} is stored with outputs; strip them before committing"
    )
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises nbclient.exceptions.CellExecutionError with the failing cell and its error


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
    import json
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).parents[1] / "scripts" / "notebooks"
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
