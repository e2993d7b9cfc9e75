"""The Python API's arguments (prompts, pictures as arrays, dtypes, numpy settings): what is clearly meant is
accepted, the rest refused in one line naming the argument, before any model work."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from flowedit.media.modes import as_picture
from flowedit.models import EditSettings, load
from flowedit.models._arguments import MAX_PROMPT, as_dtype, check_prompt

SIZE = (32, 32)


@pytest.fixture(scope="module")
def editor():
    return load("tiny-sd3")


def picture(seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def one_line(err):
    text = str(err.value)
    assert "\n" not in text and len(text) < 500
    return text


# T1, W11, U10: the Python API's arguments


@given(st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=80))
def test_every_printable_prompt_is_accepted_as_it_is(prompt):
    assert check_prompt(prompt, "target_prompt") is prompt


@given(
    st.text(max_size=20),
    st.sampled_from(["\udcff", "\ud800", "\x00", "\x1b", "\x7f"]),
    st.text(max_size=20),
)
def test_a_prompt_with_a_byte_that_is_not_utf8_or_a_control_character_is_refused(before, bad, after):
    with pytest.raises(ValueError, match="^target_prompt holds (a byte that is not UTF-8 text|the control character)"):
        check_prompt(before + bad + after, "target_prompt")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "--target must be a string (a prompt), got None"),
        (5, "--target must be a string (a prompt), got 5"),
        (b"a dog", "--target must be a string (a prompt), got b'a dog'"),
        (["a dog", "a fox"], "--target must be a string (a prompt), got ['a dog', 'a fox']; one edit takes one"),
        (
            "x" * (MAX_PROMPT + 1),
            f"--target holds a prompt of {MAX_PROMPT + 1} characters; at most {MAX_PROMPT} are read",
        ),
        ("a \udcff dog", "--target holds a byte that is not UTF-8 text (character 3); write the prompt in UTF-8"),
    ],
    ids=["None", "int", "bytes", "list", "long", "surrogate"],
)
def test_a_bad_prompt_is_one_line_naming_the_argument(value, message):
    with pytest.raises(ValueError) as caught:
        check_prompt(value, "--target")
    assert one_line(caught).startswith(message)


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        (("a cat", ["a dog", "a fox"]), "target_prompt must be a string (a prompt), got ['a dog', 'a fox']"),
        ((None, "a dog"), "source_prompt must be a string (a prompt), got None"),
        (("a cat", 5), "target_prompt must be a string (a prompt), got 5"),
        (("a cat", "a \udcff dog"), "target_prompt holds a byte that is not UTF-8 text (character 3)"),
    ],
    ids=["list", "None", "int", "surrogate"],
)
def test_the_editor_refuses_a_bad_prompt_before_any_model_work(editor, monkeypatch, prompts, message):
    monkeypatch.setattr(editor.adapter, "encode_image", None)  # any model work would fail with a TypeError
    for call in (editor.edit, lambda *a: editor.render(*a, editor.settings(steps=2, n_max=1))):
        with pytest.raises(ValueError) as caught:
            call(picture(), *prompts)
        assert one_line(caught).startswith(message)


def test_a_uint8_array_is_the_image_it_holds(editor):
    pixels = np.asarray(picture())
    gray = pixels[..., 0]
    rgba = np.concatenate([pixels, np.full_like(gray, 255)[..., None]], axis=-1)
    for array, image in [(pixels, picture()), (gray, Image.fromarray(gray).convert("RGB")), (rgba, picture())]:
        assert np.array_equal(np.asarray(editor.load_image(array)), np.asarray(editor.load_image(image)))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), "got an array of dtype float32; scale it to 0..255 uint8"),
        (np.zeros((8, 8, 2), np.uint8), "got an array of shape (8, 8, 2)"),
        (np.zeros((0, 8), np.uint8), "got an array of shape (0, 8)"),
        (np.zeros((1, 8, 8, 3), np.uint8), "got an array of shape (1, 8, 8, 3)"),
        (torch.zeros(3, 8, 8), "got a torch tensor of shape (3, 8, 8); convert it to such an array"),
        (None, "got NoneType None"),
    ],
    ids=["float", "two-channels", "empty", "batch", "tensor", "None"],
)
@pytest.mark.parametrize("name", ["image", "mask"])
def test_an_array_that_is_no_picture_is_refused_naming_the_argument(editor, value, message, name):
    with pytest.raises(ValueError) as caught:
        if name == "image":
            editor.load_image(value)
        else:
            editor.load_mask(value, picture())
    text = one_line(caught)
    assert text.startswith(f"{name} must be a PIL image, a path, or a uint8 array") and message in text
    assert as_picture(np.zeros((4, 4, 4), np.uint8)).mode == "RGBA"


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("float16", torch.float16), ("bfloat16", torch.bfloat16), ("float32", torch.float32), (torch.float16, None)],
)
def test_a_dtype_may_be_named(dtype, expected):
    assert as_dtype(dtype) == (expected or dtype)


def test_load_takes_a_named_dtype_and_refuses_other_arguments_naming_them():
    assert load("tiny-sd3", dtype="float16").pipe.transformer.dtype == torch.float16
    for options, message in [
        ({"dtype": "half"}, "dtype must be a floating torch dtype or one of float16, bfloat16, float32, got 'half'"),
        (
            {"dtype": torch.int64},
            "dtype must be a floating torch dtype or one of float16, bfloat16, float32, got torch",
        ),
        ({"offload": "yes"}, "offload must be True or False, got 'yes'"),
        ({"device": "gpu0"}, "device 'gpu0' is not a torch device; use cpu, cuda or cuda:N"),
    ]:
        with pytest.raises(ValueError) as caught:
            load("tiny-sd3", **options)
        assert one_line(caught).startswith(message)
    with pytest.raises(ValueError, match=r"^model must be a hub id, a local folder or tiny-<family>, got 5$"):
        load(5)


@given(
    steps=st.integers(1, 50).flatmap(
        lambda n: st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, int]).map(lambda t: t(n))
    )
)
def test_numpy_and_torch_integers_are_integers_to_the_settings(steps):
    settings = EditSettings.parse("steps", steps)
    assert settings == int(steps) and type(settings) is int
    assert EditSettings.parse("steps", torch.tensor(int(steps))) == int(steps)
    assert EditSettings.parse("tar_guidance", np.float32(2.5)) == 2.5
    for value in (True, np.bool_(True), 2.0, "3", torch.tensor(2.0)):
        with pytest.raises(ValueError, match="^steps must be an integer, got"):
            EditSettings.parse("steps", value)


def test_the_editor_takes_numpy_settings(editor):
    settings = editor.settings(steps=np.int64(4), n_max=np.int32(2), tar_guidance=np.float64(7.0))
    assert (settings.steps, settings.n_max, settings.tar_guidance) == (4, 2, 7.0)
    assert json.dumps({"steps": settings.steps})  # plain Python numbers in records
