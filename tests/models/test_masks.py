"""Local edits: a mask keeps the source exactly where it is black, is the plain edit where it is white."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from flowedit.cli import main
from flowedit.media.masks import pixel_mask
from flowedit.models import FAMILIES, PackedLayout, load
from flowedit.models._masks import latent_mask

SIZE = (64, 48)


def picture(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def right_half(size=SIZE):
    mask = np.zeros((size[1], size[0]), np.uint8)
    mask[:, size[0] // 2 :] = 255
    return Image.fromarray(mask)


@pytest.fixture(scope="module", params=[name for name, family in FAMILIES.items() if family.media == "image"])
def editor(request):
    return load(f"tiny-{request.param}")


def test_a_white_mask_is_the_plain_edit_and_black_pixels_are_the_input(editor):
    settings = editor.settings(steps=6, n_max=4, n_min=1)
    plain_image, plain = editor.render(picture(), "a cat", "a dog", settings)
    white_image, white = editor.render(picture(), "a cat", "a dog", settings, mask=Image.new("L", SIZE, 255))
    assert torch.equal(white.edited, plain.edited)
    assert np.array_equal(np.asarray(white_image), np.asarray(plain_image))

    local_image, local = editor.render(picture(), "a cat", "a dog", settings, mask=right_half())
    kept, source = np.asarray(local_image)[:, : SIZE[0] // 2], np.asarray(editor.load_image(picture()))
    assert np.array_equal(kept, source[:, : SIZE[0] // 2])  # bit for bit the input
    m = latent_mask(local.mask, local.source, local.layout)
    zero = (m == 0).expand_as(local.source)
    assert zero.any() and torch.equal(local.edited[zero], local.source[zero])  # the latents never moved there
    assert not torch.equal(local.edited, local.source)


def test_latent_masks_follow_the_latent_layout():
    x = torch.zeros(1, 4, 24, 32)
    mask = right_half()
    m = latent_mask(mask, x, None)
    assert m.shape == (1, 1, 24, 32) and m[..., :16].max() == 0 and m[..., 16:].min() == 1
    layout = PackedLayout(1, 4, 24, 32)
    packed = latent_mask(mask, layout.pack(x), layout)  # (1, 192, 16): each token's features from its 2x2 patch
    assert packed.shape == (1, 192, 16)
    assert torch.equal(layout.unpack(packed), m.expand(1, 4, 24, 32))


def test_feathering_softens_the_edge_and_other_sizes_are_resized_with_a_warning():
    soft = np.asarray(pixel_mask(right_half(), SIZE, feather=3.0))
    assert ((soft > 0) & (soft < 255)).any() and soft[:, 0].max() == 0
    with pytest.warns(UserWarning, match="mask of size 32x24 resized to the image's 64x48"):
        assert pixel_mask(right_half((32, 24)), SIZE).size == SIZE


@pytest.mark.parametrize(
    ("mask", "options", "message"),
    [
        (Image.new("L", SIZE, 0), {}, "the mask is all black"),
        (right_half(), {"feather": -1.0}, "feather must be a radius"),
        (right_half(), {"method": "sdedit"}, "a mask applies to methods flowedit, flowalign, dvrf, dds only, not sdedit"),
    ],
)
def test_bad_masks_get_one_clear_error(mask, options, message):
    editor = load("tiny-sd3")
    feather = options.pop("feather", 0.0)
    with pytest.raises(ValueError, match=message):
        editor.edit_latents(
            picture(), "a", "b", editor.settings(steps=4, n_max=3, **options), mask=mask, feather=feather
        )


def test_flowedit_edit_mask_keeps_black_pixels_and_records_the_mask(tmp_path, capsys):
    picture().save(tmp_path / "in.png")
    right_half().save(tmp_path / "mask.png")
    Image.new("L", SIZE, 0).save(tmp_path / "black.png")
    argv = ["edit", "--image", str(tmp_path / "in.png"), "--source", "a cat", "--target", "a dog", "--steps", "4"]
    argv += ["--n-max", "3"]
    out = tmp_path / "out.png"
    assert main([*argv, "--model", "tiny-sd3", "--out", str(out), "--mask", str(tmp_path / "mask.png")]) == 0
    with Image.open(out) as edited, Image.open(tmp_path / "in.png") as source:
        assert np.array_equal(np.asarray(edited)[:, :32], np.asarray(source)[:, :32])
        record = json.loads(edited.info["flowedit"])
    assert len(record["mask_sha256"]) == 64 and record["feather"] == 0.0  # the mask as edited, not its path
    # an all-black mask is refused before any model loads (this model name would fail to load)
    bad = [*argv, "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "x.png")]
    capsys.readouterr()
    assert main([*bad, "--mask", str(tmp_path / "black.png")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("the mask is all black, so nothing would be edited; paint the region to edit white")
    )
    assert not (tmp_path / "x.png").exists()
    (tmp_path / "notes.png").write_text("not a picture")
    assert main([*bad, "--mask", str(tmp_path / "notes.png")]) == 2
    assert "notes.png: not an image Pillow can read" in capsys.readouterr().err


def test_a_batch_entry_may_name_a_mask_and_its_outputs_keep_the_black_pixels(tmp_path):
    picture().save(tmp_path / "in.png")
    right_half().save(tmp_path / "half.png")
    entry = "- input_img: in.png\n  source_prompt: a cat\n  target_prompts: [a dog]\n  target_codes: [dog]\n"
    (tmp_path / "edits.yaml").write_text(entry + "  mask: half.png\n  feather: 2\n")
    run = ["run", str(tmp_path / "edits.yaml"), "--out-dir", str(tmp_path / "out"), "--model", "tiny-sd3"]
    run += ["--steps", "4", "--n-max", "3"]
    assert main(run) == 0
    with Image.open(tmp_path / "out" / "in" / "dog.png") as edited, Image.open(tmp_path / "in.png") as source:
        # feathered by 2 px: the mask is exactly 0 well left of the middle
        assert np.array_equal(np.asarray(edited)[:, :24], np.asarray(source)[:, :24])
        record = json.loads(edited.info["flowedit"])
    assert record["feather"] == 2.0 and len(record["mask_sha256"]) == 64
    assert main(run) == 0  # the same request: kept
    Image.new("L", SIZE, 255).save(tmp_path / "half.png")  # another mask: the output was made with another request
    assert main(run) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  feather: 2\n", "key 'feather' softens a mask's edge; give a 'mask' too"),
        ("  mask: 3\n", "key 'mask' must be the path of a mask image"),
        ("  mask: half.png\n  feather: -1\n", "key 'feather' must be a radius in pixels >= 0"),
    ],
)
def test_bad_mask_keys_name_the_entry(tmp_path, extra, message):
    from flowedit.runs import load_jobs

    entry = "- input_img: in.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [b]\n"
    (tmp_path / "edits.yaml").write_text(entry + extra)
    with pytest.raises(ValueError, match=f"entry 1: {message}"):
        load_jobs(tmp_path / "edits.yaml", tmp_path / "out")
