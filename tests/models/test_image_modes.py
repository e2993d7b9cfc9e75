"""Source images in every mode become 8-bit RGB as a viewer shows them: EXIF orientation, 16-bit, alpha, palettes."""

import io
import struct

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from image_support import chunk, handmade_png, pixels, png_bytes, white_over
from PIL import Image

from flowedit.media.images import decode_image, open_image
from flowedit.media.modes import to_rgb

# --- EXIF orientation ------------------------------------------------------------------------------

ORIENTED = {  # EXIF orientation -> what a viewer shows, as numpy on the stored (H, W, 3) array
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, k=-1),  # rotate 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, k=1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied(orientation):
    stored = np.random.default_rng(orientation).integers(0, 256, (20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    shown = decode_image(png_bytes(image, exif=exif))
    np.testing.assert_array_equal(np.asarray(shown), ORIENTED[orientation](stored))


def test_orientation_6_puts_the_top_left_corner_top_right_in_a_jpeg():
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:8, :8] = (255, 0, 0)  # a red block in the stored top-left corner
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif)
    shown = decode_image(buffer.getvalue())
    assert shown.size == (20, 40)  # 20 wide, 40 high, as a viewer shows it
    assert pixels(shown)[3, 16].tolist() == pytest.approx([255, 0, 0], abs=8)  # top right
    assert pixels(shown)[3, 3].tolist() == pytest.approx([0, 0, 0], abs=8)


# --- to_rgb: every mode --------------------------------------------------------------------------


def test_rgb_is_returned_as_it_is():
    image = Image.new("RGB", (3, 2), (1, 2, 3))
    assert to_rgb(image) is image


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N", "I"])
def test_integer_grayscale_is_scaled_from_16_bits_not_clipped_white(mode):
    values = np.array([[0, 128, 129, 257, 32768, 65535]])
    if mode == "I":  # 32-bit: clipped to the 16-bit range first
        image = Image.fromarray(np.array([[0, 128, 129, 257, 32768, 65535, -5, 70000]], dtype=np.int32))
        expected = np.round(np.clip(np.asarray(image), 0, 65535) * 255 / 65535)
    else:
        image = Image.frombytes(mode, values.shape[::-1], values.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
        assert np.array_equal(np.asarray(image), values)
        expected = np.round(values * 255 / 65535)
    assert image.mode == mode
    rgb = to_rgb(image)
    assert rgb.mode == "RGB"
    np.testing.assert_array_equal(pixels(rgb), np.repeat(expected[..., None], 3, axis=2))
    assert pixels(rgb)[0, :, 0].tolist() == [0, 0, 1, 1, 128, 255] + ([0, 255] if mode == "I" else [])


@given(arrays(np.uint16, st.tuples(st.integers(1, 5), st.integers(1, 5))))
@example(np.array([[0, 32767, 32768, 65535]], dtype=np.uint16))
def test_16_bit_grayscale_png_rounds_to_8_bits(values):
    image = decode_image(png_bytes(Image.fromarray(values)))
    np.testing.assert_array_equal(pixels(image)[..., 0], np.round(values.astype(float) * 255 / 65535))
    assert pixels(image)[..., 0].tolist() == pixels(image)[..., 2].tolist()


def test_16_bit_grayscale_png_from_disk(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    assert pixels(open_image(path))[0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]


def test_16_bit_grayscale_colour_key_turns_white():
    gray = np.array([[0, 1000, 65535]], dtype=np.uint16)
    image = decode_image(handmade_png(gray, 16, 0, chunk(b"tRNS", struct.pack(">H", 1000))))
    assert pixels(image)[0, :, 0].tolist() == [0, 255, 255]


def test_16_bit_rgb_and_rgba_pngs_keep_their_values():
    # Pillow 13 opens 16-bit RGB(A) PNGs as 8-bit "RGB"/"RGBA" holding the high byte of each sample
    rgb = np.array([[[0, 32768, 65535], [65535, 256, 255], [12345, 40000, 50000]]], dtype=np.uint16)
    image = decode_image(handmade_png(rgb, 16, 2))
    rgb = rgb.astype(float)
    assert np.abs(pixels(image) - rgb * 255 / 65535).max() <= 1
    rgba = np.concatenate([rgb, [[[65535], [0], [32768]]]], axis=2)
    image = decode_image(handmade_png(rgba.astype(np.uint16), 16, 6))
    expected = white_over(rgb * 255 / 65535, rgba[..., 3] * 255 / 65535)
    assert pixels(image)[0, 1].tolist() == [255, 255, 255]
    assert np.abs(pixels(image) - expected).max() <= 1.5


@given(arrays(np.uint8, st.tuples(st.integers(1, 4), st.integers(1, 4), st.just(4))))
@example(np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [0, 100, 200, 128]]], dtype=np.uint8))
def test_rgba_is_composited_over_white(rgba):
    image = to_rgb(Image.fromarray(rgba))
    assert image.mode == "RGB"
    assert np.abs(pixels(image) - white_over(rgba[..., :3], rgba[..., 3])).max() <= 0.5  # rounded, not truncated


def test_rgba_transparent_opaque_and_half():
    rgba = np.array([[[10, 20, 30, 0], [10, 20, 30, 255], [0, 100, 200, 128]]], dtype=np.uint8)
    assert pixels(decode_image(png_bytes(Image.fromarray(rgba))))[0].tolist() == [
        [255, 255, 255],
        [10, 20, 30],
        [127, 177, 227],  # 255 - (255 - c) * 128 / 255, rounded
    ]


def test_palette_with_transparency_is_composited_over_white():
    image = Image.new("P", (3, 1))
    image.putpalette([255, 0, 0, 0, 0, 255, 0, 128, 0])
    image.putdata([0, 1, 2])
    single = decode_image(png_bytes(image, transparency=1))  # index 1 fully transparent
    assert pixels(single)[0].tolist() == [[255, 0, 0], [255, 255, 255], [0, 128, 0]]
    partial = decode_image(png_bytes(image, transparency=bytes([255, 0, 128])))  # alpha per palette entry
    assert Image.open(io.BytesIO(png_bytes(image, transparency=bytes([255, 0, 128])))).mode == "P"
    assert pixels(partial)[0].tolist() == [[255, 0, 0], [255, 255, 255], [127, 191, 127]]
    assert pixels(decode_image(png_bytes(image)))[0].tolist() == [[255, 0, 0], [0, 0, 255], [0, 128, 0]]


def test_colour_keyed_rgb_and_gray_turn_white():
    rgb = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.uint8)
    image = decode_image(handmade_png(rgb, 8, 2, chunk(b"tRNS", struct.pack(">HHH", 4, 5, 6))))
    assert pixels(image)[0].tolist() == [[1, 2, 3], [255, 255, 255]]
    gray = np.array([[7, 9]], dtype=np.uint8)
    image = decode_image(handmade_png(gray, 8, 0, chunk(b"tRNS", struct.pack(">H", 7))))
    assert pixels(image)[0].tolist() == [[255, 255, 255], [9, 9, 9]]


def test_gray_alpha_modes_over_white():
    la = Image.fromarray(np.array([[[40, 0], [40, 255], [40, 51]]], dtype=np.uint8), "LA")
    assert pixels(to_rgb(la))[0, :, 0].tolist() == [255, 40, 212]  # 255 - 215 * 0.2 = 212
    pa = Image.frombytes("PA", (3, 1), bytes([0, 0, 0, 255, 0, 51]))  # Pillow's LA -> PA drops alpha
    pa.putpalette([40, 40, 40])
    assert pixels(to_rgb(pa))[0, :, 0].tolist() == [255, 40, 212]
    premultiplied = Image.frombytes("La", (3, 1), bytes([0, 0, 40, 255, 8, 51]))  # 40 * 0.2 = 8
    assert pixels(to_rgb(premultiplied))[0].tolist() == [[255] * 3, [40] * 3, [212] * 3]
    rgba_premultiplied = Image.frombytes("RGBa", (2, 1), bytes([0, 0, 0, 0, 8, 16, 24, 51]))
    assert pixels(to_rgb(rgba_premultiplied))[0].tolist() == [[255, 255, 255], [212, 220, 228]]


def test_cmyk_one_bit_and_other_modes_follow_pillow():
    cmyk = Image.frombytes("CMYK", (4, 1), bytes([0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 100, 0, 0, 100]))
    assert pixels(to_rgb(cmyk))[0].tolist() == [
        [255, 255, 255],
        [0, 255, 255],
        [0, 0, 0],
        [94, 155, 155],
    ]  # (255 - c)(255 - k) / 255
    one_bit = Image.frombytes("1", (8, 1), bytes([0b10100000]))
    assert pixels(to_rgb(one_bit))[0, :3, 0].tolist() == [255, 0, 255]
    colourful = Image.fromarray(np.random.default_rng(1).integers(0, 256, (3, 5, 3), dtype=np.uint8))
    for mode in ("L", "YCbCr", "LAB", "HSV", "RGBX", "P"):
        converted = colourful.convert(mode)
        assert to_rgb(converted).mode == "RGB"
        np.testing.assert_array_equal(pixels(to_rgb(converted)), pixels(converted.convert("RGB")), err_msg=mode)


def test_float_is_clipped_and_truncated_as_pillow_does():
    image = Image.fromarray(np.array([[-5.0, 0.4, 100.6, 254.7, 300.0]], dtype=np.float32))
    assert image.mode == "F"
    assert pixels(to_rgb(image))[0, :, 0].tolist() == [0, 0, 100, 254, 255]
