"""digits-sd3: the SD3 pipeline trained on 8x8 digits and shipped with the package (benchmarks/bench_digits_sd3.py
holds the real quality thresholds; these are loose and fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flowedit.models import FAMILIES, load
from flowedit.models._digits import WEIGHTS
from flowedit.models._families import family_of_name
from flowedit.train import digits as training
from flowedit.train.__main__ import main as train_main
from flowtoy import digits

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def editor():
    return load("digits-sd3")


def held_out(label: int, n: int) -> list[Image.Image]:
    return [Image.fromarray(a) for a in training.render(digits.load("test", label)[0][:n].numpy())]


def test_the_shipped_weights_are_float16_safetensors_within_10_mb_and_read_back_as_their_family():
    files = [p for p in WEIGHTS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 10 * 2**20
    tensors = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parent.name for p in tensors} == {"vae", "transformer", "text_encoder", "text_encoder_2"}
    from safetensors import safe_open

    for path in tensors:
        with safe_open(str(path), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}, path
    assert family_of_name(str(WEIGHTS)) is FAMILIES["digits-sd3"] is family_of_name("digits-sd3")


def test_the_shipped_weights_load_offline_and_give_the_same_bytes_for_the_same_seed(editor):
    assert editor.family is FAMILIES["digits-sd3"] and editor.settings() == FAMILIES["digits-sd3"].defaults
    image = held_out(3, 1)[0]
    settings = editor.settings(steps=10, n_max=7)
    first, _ = editor.render(image, "a handwritten 3", "a handwritten 8", settings)
    again, _ = load("digits-sd3").render(image, "a handwritten 3", "a handwritten 8", settings)
    assert first.size == (32, 32) and first.tobytes() == again.tobytes()
    other, _ = editor.render(image, "a handwritten 3", "a handwritten 8", settings.replace(seed=settings.seed + 1))
    assert other.tobytes() != first.tobytes()


def test_a_fast_edit_of_held_out_threes_reaches_the_target_class(editor):
    settings = editor.settings(steps=20, n_max=13)  # the defaults' start t on a coarser grid
    edited = [editor.render(x, "a handwritten 3", "a handwritten 8", settings)[0] for x in held_out(3, 4)]
    probability = digits.classify(training.to_digits(np.stack([np.asarray(e) for e in edited])))
    assert probability[:, 8].mean() > 0.5  # the benchmark measures the full held-out class at the defaults
    assert (probability.argmax(1) == 8).sum() >= 3


def test_digits_go_to_32x32_grey_rgb_and_back_to_8x8_by_4x4_means():
    x = digits.load("test", 0)[0][:3]
    big = training.render(x.numpy())
    assert big.shape == (3, 32, 32, 3) and big.dtype == np.uint8
    assert (big[..., 0] == big[..., 1]).all() and (big[..., 0] == big[..., 2]).all()  # grey as RGB
    back = training.to_digits(big)
    assert back.shape == (3, 64)  # the float pixels the VAE sees give the same digits, to float32 rounding
    assert torch.allclose(training.to_digits(training.pixels(big)), back, rtol=0, atol=4 * 2.0**-23)
    for a, b in zip(x, back, strict=True):  # bilinear x4, then 4x4 means: a blur of the same digit
        assert np.corrcoef(a.numpy(), b.numpy())[0, 1] > 0.9
    flat = torch.full((2, 64), -1.0)
    flat[1] = 1.0  # blank and full ink survive the round trip exactly
    assert torch.equal(training.to_digits(training.render(flat.numpy())), flat)


def test_the_training_commands_first_steps_lower_the_losses_and_write_a_loadable_folder(tmp_path):
    assert train_main(["digits", "--out", str(tmp_path), "--vae-steps", "12", "--steps", "12", "--batch", "8"]) == 0
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["settings"]["steps"] == 12 and record["settings"]["batch"] == 8
    assert record["vae_mse_end"] < record["vae_mse_start"] and record["loss_end"] < record["loss_start"]
    assert family_of_name(str(tmp_path)) is FAMILIES["digits-sd3"]
