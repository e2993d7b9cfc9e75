"""flowedit run / edit on the tiny pipelines: order-independent seeds, resume, failures, YAML errors."""

import json

import numpy as np
import pytest
from PIL import Image

from flowedit.cli import main
from flowedit.runs import derive_seed, load_jobs

OPTIONS = ["--model", "tiny-sd3", "--steps", "4", "--n-max", "3"]


def write_image(path, seed, size=(40, 32)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


ENTRIES = [
    "- input_img: a.png\n  source_prompt: a cat\n  target_prompts: [a dog, a fox]\n  target_codes: [dog, fox]\n",
    "- init_img: b.png\n  source_prompt: a house\n  target_prompts: [a castle]\n  target_codes: [castle]\n  n_avg: 2\n",
    "- input_img: broken.png\n  source_prompt: noise\n  target_prompts: [more noise]\n  target_codes: [x]\n",
]


@pytest.fixture
def batch(tmp_path):
    write_image(tmp_path / "a.png", 0)
    write_image(tmp_path / "b.png", 1, size=(37, 30))  # not a multiple of the factor: cropped
    (tmp_path / "broken.png").write_bytes(b"not an image")
    return tmp_path


def outputs(out_dir):
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*.png"))}


def records(out_dir):
    return [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]


def test_batch_order_does_not_change_any_output_and_failures_are_recorded(batch, capsys):
    (batch / "forward.yaml").write_text("".join(ENTRIES))
    (batch / "backward.yaml").write_text("".join(reversed(ENTRIES)))
    assert main(["run", str(batch / "forward.yaml"), "--out-dir", str(batch / "f"), *OPTIONS]) == 1
    assert main(["run", str(batch / "backward.yaml"), "--out-dir", str(batch / "b"), *OPTIONS]) == 1
    forward, backward = outputs(batch / "f"), outputs(batch / "b")
    assert sorted(forward) == ["a/dog.png", "a/fox.png", "b/castle.png"]
    assert forward == backward  # bit for bit (pixels and embedded record), whatever the position in the file
    status = {r["code"]: r for r in records(batch / "f")}
    assert status["x"]["status"] == "failed" and "broken.png" in status["x"]["error"]
    assert status["castle"]["n_avg"] == 2 and status["dog"]["model_calls"] == 3
    assert status["dog"]["seed"] == derive_seed(0, status["dog"]["source_sha256"], "a cat", "a dog")
    assert "3 edited, 0 already done, 1 failed" in capsys.readouterr().out


def test_resume_redoes_nothing(batch, capsys):
    (batch / "edits.yaml").write_text("".join(ENTRIES[:2]))
    out = batch / "out"
    assert main(["run", str(batch / "edits.yaml"), "--out-dir", str(out), *OPTIONS]) == 0
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    (out / "a" / "fox.png").unlink()  # as if the run had been killed before this edit
    assert main(["run", str(batch / "edits.yaml"), "--out-dir", str(out), *OPTIONS]) == 0
    assert "1 edited, 2 already done, 0 failed" in capsys.readouterr().out.splitlines()[-1]
    for path, mtime in first.items():
        if path.name != "fox.png":
            assert path.stat().st_mtime_ns == mtime  # untouched
    assert [r["code"] for r in records(out)] == ["dog", "fox", "castle", "fox"]
    assert not [p for p in out.rglob(".*") if p.name != ".flowedit-locks" and p.parent.name != ".flowedit-locks"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- source_prompt: a\n  target_prompts: [b]\n  target_codes: [c]\n", "entry 1: key 'input_img'"),
        ("- input_img: a.png\n  source_prompt: a\n  target_prompts: [b, c]\n  target_codes: [c]\n", "1 codes for 2"),
        (
            "- input_img: a.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [c]\n  nmax: 3\n",
            "unknown key 'nmax'",
        ),
        (
            "- input_img: a.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [c]\n  n_max: x\n",
            "key 'n_max': n_max must be an integer, got 'x'",
        ),
        ("[unclosed\n", "not valid YAML"),
        ("{}\n", "non-empty list of entries"),
    ],
)
def test_yaml_errors_name_the_file_entry_and_key(tmp_path, text, message):
    (tmp_path / "e.yaml").write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        load_jobs(tmp_path / "e.yaml", tmp_path / "out")
    assert str(tmp_path / "e.yaml") in str(info.value)


def test_bad_settings_exit_2_before_loading_a_model(batch, capsys):
    (batch / "edits.yaml").write_text(ENTRIES[0])
    argv = [
        "run",
        str(batch / "edits.yaml"),
        "--out-dir",
        str(batch / "o"),
        "--model",
        "tiny-sd3",
        "--steps",
        "4",
        "--n-max",
        "5",
    ]
    assert main(argv) == 2
    assert "entry 1: n_max = 5 exceeds the number of steps (4)" in capsys.readouterr().err
    assert not (batch / "o").exists()


def test_edit_command_writes_one_image(batch, capsys):
    out = batch / "edit.png"
    argv = ["edit", "--image", str(batch / "a.png"), "--source", "a cat", "--target", "a dog", "--out", str(out)]
    assert main([*argv, "--model", "tiny-flux", "--steps", "4", "--n-max", "2", "--n-avg", "2"]) == 0
    assert Image.open(out).size == (40, 32) and "2 model calls" in capsys.readouterr().out
    assert main([*argv[:2], str(batch / "missing.png"), *argv[3:], "--model", "tiny-sd3"]) == 2
