"""Untrusted inputs of the Python API and the batch path: never echoed, refused in one line naming the argument."""

import argparse
import errno
import math
import os
import string

import numpy as np
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from image_support import chunk, png_bytes
from PIL import Image

from flowedit.cli.context import mask_of
from flowedit.media.images import ImageLimits, decode_image, file_kind
from flowedit.media.masks import open_mask, pixel_mask
from flowedit.media.modes import to_gray
from flowedit.models import load
from flowedit.runs import process_shard
from flowedit.runs.jobs import _strict_loader, load_jobs
from flowedit.runs.records import append_record

SIZE = (32, 32)
SECRET = "AWS_SECRET=s3cr3t-Vq7Xk2"


@pytest.fixture(scope="module")
def editor():
    return load("tiny-sd3")


def picture(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def one_line(err):
    text = str(err.value)
    assert "\n" not in text and len(text) < 500
    return text


# S3: data that is not an image is named by its kind, never quoted


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (f"PATH=/usr/bin\x00{SECRET}\x00HOME=/root\x00".encode(), "text, not image data"),  # /proc/self/environ
        (b"%PDF-1.7\n" + SECRET.encode(), "a PDF document"),
        (b"PK\x03\x04" + SECRET.encode(), "a ZIP archive"),
        (b"\x7fELF\x02\x01\x01" + SECRET.encode(), "an ELF program"),
        (b"\x00\x00\x00\x18ftypisom" + SECRET.encode(), "an MP4/MOV/HEIF file"),
        (b"\x00\x9c\xff" + SECRET.encode() + b"\xfe", "binary data of an unknown kind"),
        (b"", "no data"),
    ],
    ids=["environ", "pdf", "zip", "elf", "mp4", "binary", "empty"],
)
def test_a_file_that_is_not_an_image_is_named_by_its_kind_never_quoted(data, kind):
    with pytest.raises(ValueError) as caught:
        decode_image(data, name="/proc/self/environ")
    text = one_line(caught)
    assert text.startswith(f"/proc/self/environ: not an image Pillow can read ({kind}")
    assert "s3cr3t" not in text and "PATH" not in text and "\\x" not in text


@given(secret=st.text(string.ascii_letters + string.digits, min_size=8, max_size=40), binary=st.binary(max_size=64))
@example(secret="abcdefgh", binary=b"")
def test_no_message_of_an_unreadable_file_holds_its_content(secret, binary):
    for data in (secret.encode() + binary, binary + secret.encode(), b"PK\x03\x04" + secret.encode()):
        kind = file_kind(data)
        assert secret not in kind
        try:
            decode_image(data, name="f")
        except ValueError as err:
            assert secret not in str(err)


def test_pillow_words_about_a_broken_file_lose_the_bytes_they_quote(monkeypatch):
    from PIL import ImageFile

    good = png_bytes(Image.new("RGB", (8, 8), "red"))
    broken = good[:33] + chunk(b"sEcR", b"payload")[:-4] + b"\x00\x00\x00\x00" + good[33:]  # a bad CRC
    with pytest.raises(ValueError) as caught:
        decode_image(broken, name="x")
    assert one_line(caught).startswith("x: not an image Pillow can read (a PNG file, damaged or of a kind")

    def load(self):  # Pillow's own words once a file opened, e.g. PngImagePlugin's "broken PNG file (chunk ...)"
        raise SyntaxError("broken PNG file (chunk b'sEcR')")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    with pytest.raises(ValueError) as caught:
        decode_image(good, name="x")
    assert one_line(caught) == (
        "x: cannot decode the image, it is truncated or corrupt (SyntaxError: broken PNG file (chunk <bytes>))"
    )


def test_a_batch_entry_naming_a_secret_file_records_its_kind_not_its_content(tmp_path, capsys):
    from flowedit.cli import main

    (tmp_path / "env.png").write_bytes(f"{SECRET}\x00HOME=/root\x00".encode())
    entry = "- input_img: env.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [b]\n"
    (tmp_path / "edits.yaml").write_text(entry)
    status = main(["run", str(tmp_path / "edits.yaml"), "--out-dir", str(tmp_path / "out"), "--model", "tiny-sd3"])
    console = capsys.readouterr()
    results = (tmp_path / "out" / "results.jsonl").read_text()
    assert status == 1 and "not an image Pillow can read (text, not image data)" in results
    assert "s3cr3t" not in results + console.out + console.err


# W4: a mask's alpha is ignored, whether it is a path, a PIL image or an array


def rgba_mask():
    """Left half black, right half white, the bottom half transparent: with alpha ignored the colour counts (the
    right half is the edit); over white (as a source image is read) the bottom would be all white, all edit."""
    rgba = np.zeros((SIZE[1], SIZE[0], 4), np.uint8)
    rgba[:, SIZE[0] // 2 :, :3] = 255
    rgba[..., 3] = 255
    rgba[SIZE[1] // 2 :, :, 3] = 0
    return rgba


def test_a_mask_with_alpha_counts_by_its_colour_whether_a_path_an_image_or_an_array(editor, tmp_path):
    rgba = rgba_mask()
    Image.fromarray(rgba).save(tmp_path / "mask.png")
    expected = np.where(np.arange(SIZE[0]) >= SIZE[0] // 2, 255, 0)[None, :].repeat(SIZE[1], 0)
    masks = [
        editor.load_mask(tmp_path / "mask.png", picture()),
        editor.load_mask(str(tmp_path / "mask.png"), picture()),
        editor.load_mask(Image.fromarray(rgba), picture()),
        editor.load_mask(rgba, picture()),
        open_mask(tmp_path / "mask.png"),
        mask_of(argparse.Namespace(mask=str(tmp_path / "mask.png"), feather=0.0), ImageLimits()).picture,
    ]
    for mask in masks:
        assert mask.mode == "L" and np.array_equal(np.asarray(mask), expected)


@pytest.mark.parametrize("mode", ["LA", "La", "PA", "RGBa", "P", "I;16", "1"])
def test_every_mode_of_a_mask_reads_as_the_luminance_of_its_colour(mode):
    gray = np.array([[0, 255], [128, 255]], np.uint8)
    alpha = np.array([[255, 0], [0, 255]], np.uint8)
    if mode == "LA":
        image = Image.fromarray(np.stack([gray, alpha], axis=-1))
    elif mode == "La":  # premultiplied: opaque, so the stored colour is the colour
        image = Image.fromarray(np.stack([gray, np.full_like(gray, 255)], axis=-1)).convert("La")
    elif mode == "PA":
        indices = np.array([[0, 1], [2, 1]], np.uint8)
        image = Image.frombytes("PA", (2, 2), np.stack([indices, alpha], axis=-1).tobytes())
        image.putpalette([0, 0, 0, 255, 255, 255, 128, 128, 128])
    elif mode == "RGBa":
        image = Image.fromarray(np.stack([gray] * 3 + [np.full_like(gray, 255)], axis=-1), "RGBA").convert("RGBa")
    elif mode == "P":
        image = Image.fromarray(gray).convert("P")
        image.info["transparency"] = int(np.asarray(image)[0, 1])  # white is the transparent entry: still white
    elif mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)  # 16-bit gray, 0..65535
    else:
        gray = np.array([[0, 255], [0, 255]], np.uint8)
        image = Image.fromarray(gray).convert("1")
    assert image.mode == mode
    assert np.array_equal(np.asarray(to_gray(image)), gray)


# W5: a feather without a mask, or not a radius, is refused, naming --feather (CLI) or feather (Python)


@pytest.mark.parametrize(
    ("mask", "feather", "message"),
    [
        (None, 3.0, "--feather 3 softens a mask's edge, and no --mask is given; give --mask too"),
        (None, math.nan, "--feather must be a radius in pixels >= 0, got nan"),
        ("mask.png", math.nan, "--feather must be a radius in pixels >= 0, got nan"),
        ("mask.png", -1.0, "--feather must be a radius in pixels >= 0, got -1.0"),
    ],
)
def test_the_cli_refuses_a_feather_without_a_mask_or_not_a_radius(tmp_path, mask, feather, message):
    Image.fromarray(rgba_mask()).save(tmp_path / "mask.png")
    args = argparse.Namespace(mask=None if mask is None else str(tmp_path / mask), feather=feather)
    with pytest.raises(ValueError) as caught:
        mask_of(args, ImageLimits())
    assert one_line(caught) == message
    assert mask_of(argparse.Namespace(mask=None, feather=0.0), ImageLimits()) is None


@pytest.mark.parametrize(
    ("local", "message"),
    [
        ({"feather": 3}, "feather 3 softens a mask's edge, but no mask is given; give a mask or drop it"),
        ({"feather": math.nan, "mask": Image.new("L", SIZE, 255)}, "feather must be a radius in pixels >= 0, got nan"),
        ({"feather": "2", "mask": Image.new("L", SIZE, 255)}, "feather must be a radius in pixels >= 0, got '2'"),
    ],
)
def test_the_editor_refuses_a_feather_without_a_mask_before_any_model_work(editor, monkeypatch, local, message):
    monkeypatch.setattr(editor.adapter, "encode_image", None)  # any model work would fail with a TypeError
    with pytest.raises(ValueError) as caught:
        editor.edit(picture(), "a cat", "a dog", steps=2, n_max=1, **local)
    assert one_line(caught) == message


# W7: a key repeated in a batch entry is refused, naming the entry and the key

ENTRY = "- input_img: in.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [{code}]\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  n_max: 3\n  n_max: 5\n", "entry 2: key 'n_max' is given twice (lines 9 and 10); keep one"),
        ("  n_max: 3\n  'n_max': 5\n", "entry 2: key 'n_max' is given twice (lines 9 and 10); keep one"),
        ("  source_prompt: c\n", "entry 2: key 'source_prompt' is given twice (lines 6 and 9); keep one"),
    ],
    ids=["plain", "quoted", "prompt"],
)
def test_a_key_repeated_in_a_batch_entry_is_refused(tmp_path, extra, message):
    (tmp_path / "edits.yaml").write_text(ENTRY.format(code="b") + ENTRY.format(code="c") + extra)
    with pytest.raises(ValueError) as caught:
        load_jobs(tmp_path / "edits.yaml", tmp_path / "out")
    assert one_line(caught) == f"{tmp_path / 'edits.yaml'}: {message}"


def test_a_merged_key_may_be_overridden_and_the_loader_keeps_libyaml(tmp_path):
    text = "- &base\n  input_img: in.png\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [b]\n"
    text += "- <<: *base\n  target_codes: [c]\n  n_max: 4\n"
    (tmp_path / "edits.yaml").write_text(text)
    jobs = load_jobs(tmp_path / "edits.yaml", tmp_path / "out")
    assert [job.code for job in jobs] == ["b", "c"] and jobs[1].overrides == {"n_max": 4}
    assert issubclass(_strict_loader(), getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# W10/U8: a launcher's environment that names no valid shard is refused


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK='-1' must be an integer in [0, WORLD_SIZE - 1] = [0, 1]"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK='2' must be an integer in [0, WORLD_SIZE - 1] = [0, 1]"),
        ({"RANK": "1"}, "RANK='1' must be an integer in [0, WORLD_SIZE - 1] = [0, 0]"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE='0' must be an integer >= 1, the number of processes"),
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' must be an integer >= 1"),
        ({"WORLD_SIZE": "1_0"}, "WORLD_SIZE='1_0' must be an integer >= 1"),
        ({"LOCAL_RANK": "x"}, "LOCAL_RANK='x' must be an integer >= 0"),
    ],
)
def test_a_wrong_rank_or_world_size_is_refused_naming_the_variable(monkeypatch, env, message):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as caught:
        process_shard()
    assert one_line(caught).startswith(f"environment variable {message}")


@given(rank=st.integers(-3, 9), world=st.integers(-1, 9), local=st.integers(-2, 9))
def test_a_shard_is_accepted_exactly_when_it_names_one(rank, world, local):
    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(local)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        if world >= 1 and 0 <= rank < world and local >= 0:
            assert process_shard() == (rank, world, local)
        else:
            with pytest.raises(ValueError, match="^environment variable (RANK|WORLD_SIZE|LOCAL_RANK)="):
                process_shard()


# U4: results.jsonl that cannot be appended to says why


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EACCES, "permission denied; make it and its folder writable (chmod u+w) or choose another --out-dir"),
        (errno.EROFS, "the file system is read-only; choose another --out-dir"),
        (errno.ENOSPC, os.strerror(errno.ENOSPC)),
    ],
)
def test_an_unwritable_results_file_says_what_failed(tmp_path, monkeypatch, code, message):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(OSError) as caught:
        append_record(tmp_path / "results.jsonl", {"a": 1})
    assert one_line(caught) == f"{tmp_path / 'results.jsonl'}: cannot append a record ({message})"


def test_a_link_or_a_folder_at_results_is_named_as_such(tmp_path):
    (tmp_path / "elsewhere.jsonl").write_text("")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(OSError, match=r"link.jsonl: cannot append a record \(it is a symbolic link, and results"):
        append_record(tmp_path / "link.jsonl", {"a": 1})
    with pytest.raises(OSError, match=r"folder.jsonl: cannot append a record \(it is a folder; move it away\)$"):
        append_record(tmp_path / "folder.jsonl", {"a": 1})
    assert (tmp_path / "elsewhere.jsonl").read_text() == ""


# U9: a model that cannot be loaded is one line of our own, with the advice


def test_a_model_that_cannot_be_loaded_says_why_in_our_words(tmp_path, monkeypatch):
    import diffusers

    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{}")
    cases = {
        str(tmp_path / "file.txt"): "it is a file; give the folder that holds model_index.json",
        str(tmp_path / "empty"): "the folder holds no model_index.json",
        str(tmp_path / "broken"): "its model_index.json or a component folder is incomplete or damaged (KeyError)",
        str(tmp_path / "no" / "such"): "no such folder, and it is not a hub id (owner/name)",
        "owner/no-such-model": "no such local folder, and the hub has no such pipeline or cannot be reached",
    }

    def diffusers_failure(name, **kwargs):
        if not os.path.isdir(name):  # what diffusers says offline, cut where our old message cut it
            raise OSError(f"Cannot load model {name}: ... Please check out the root cause in the stacktrace above.")
        return original(name, **kwargs)

    original = diffusers.DiffusionPipeline.from_pretrained
    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", diffusers_failure)
    for model, problem in cases.items():
        with pytest.raises(OSError) as caught:
            load(model)
        text = one_line(caught)
        assert text.startswith(f"could not load the pipeline {model!r}: {problem}"), text
        assert text.endswith("on a machine with access to the hub") and "stack" not in text


def test_pixel_masks_take_arrays_and_refuse_all_black():
    assert pixel_mask(rgba_mask(), SIZE).mode == "L"
    with pytest.raises(ValueError, match="the mask is all black"):
        pixel_mask(np.zeros((4, 4), np.uint8), (4, 4))
