"""Execute every notebook in notebooks/ and save it, with its outputs, as docs/notebooks/<name>.ipynb.

The copies can be read without running anything (GitHub renders them); each records the sha256 of the cells it
was executed from (metadata ``rendered_from``), and tests/test_notebooks.py fails when a notebook has changed
since. Run by ``scripts/notebooks --render``.
"""

import base64
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat
from PIL import Image

ROOT = Path(__file__).parents[1]


def source_digest(nb) -> str:
    """sha256 of a notebook's cell types and sources (the same digest as the test's)."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def smaller_png(data: str) -> str:
    """A base64 PNG figure re-encoded with a 256-colour palette: about a quarter of the bytes, the same look."""
    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def main(names: list[str]) -> None:
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures saved as PNG outputs
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
        nb.metadata.pop("widgets", None)  # widgets need a kernel: the copies keep their figures and text only
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
                if "image/png" in output.get("data", {}):
                    output["data"]["image/png"] = smaller_png(output["data"]["image/png"])
        nb.metadata["rendered_from"] = digest
        nbformat.write(nb, out / path.name)
        print(f"{path.name}: executed in {time.perf_counter() - tic:.1f} s -> {out / path.name}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
