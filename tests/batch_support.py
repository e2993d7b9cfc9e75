"""Helpers of the batch-run tests: tiny images, batch entries, a run of ``flowedit run`` on the tiny SD3."""

import numpy as np
import yaml
from PIL import Image

from flowedit.cli import main
from flowedit.runs.records import read_records

FAST = ["--model", "tiny-sd3", "--steps", "4", "--n-max", "2"]


def write_image(path, seed, size=(32, 32)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def entry(image="a.png", codes=("dog",), prompts=None, **extra) -> dict:
    prompts = list(prompts or [f"a {c}" for c in codes])
    return {
        "input_img": image,
        "source_prompt": "a cat",
        "target_prompts": prompts,
        "target_codes": list(codes),
    } | extra


def batch_file(folder, *entries, name="edits.yaml"):
    (folder / name).write_text(yaml.safe_dump(list(entries)))
    return str(folder / name)


def run(folder, edits, *extra, out="out"):
    return main(["run", edits, "--out-dir", str(folder / out), *FAST, *extra])


def ok_records(out):
    return [r for r in read_records(out / "results.jsonl") if r["status"] == "ok"]


def hidden_files(out):
    return [p for p in out.rglob(".*") if ".flowedit-locks" not in p.parts]
