"""Execute every notebook in notebooks/ and save it, with its outputs, as docs/notebooks/<name>.ipynb.

The copies can be read without running anything (GitHub renders them); each records the sha256 of the cells it
was executed from (metadata ``rendered_from``), and tests/test_notebooks.py fails when a notebook has changed
since. Run by ``scripts/notebooks --render``.
"""

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).parents[1]


def source_digest(nb) -> str:
    """sha256 of a notebook's cell types and sources (the same digest as the test's)."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def main(names: list[str]) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    out = ROOT / "docs" / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in [p for p in paths if not names or p.stem in names or p.name in names]:
        nb = nbformat.read(path, as_version=4)
        digest = source_digest(nb)
        tic = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            client = nbclient.NotebookClient(
                nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp}}
            )
            client.execute()
        nb.metadata["rendered_from"] = digest
        nbformat.write(nb, out / path.name)
        print(f"{path.name}: executed in {time.perf_counter() - tic:.1f} s -> {out / path.name}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
