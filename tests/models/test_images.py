"""Untrusted source images: special files, size and pixel limits before decoding, corrupt data, modes to RGB."""

import ast
import io
import os
import socket
import struct
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import flowedit.models._images as images_module
from flowedit.models._images import (
    MAX_BYTES,
    MAX_PIXELS,
    ImageLimits,
    decode_image,
    open_image,
    read_image_file,
    to_rgb,
)


def png_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(samples, depth, colour_type, extra=b""):
    """A PNG written byte by byte: samples (H, W) or (H, W, C); colour type 0 gray, 2 RGB, 6 RGBA."""
    height, width = samples.shape[:2]
    rows = samples.astype(">u2" if depth == 16 else "u1").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def header_only_png(width, height):
    """A 1-bit grayscale PNG header of any size with a tiny IDAT: enough for Image.open to read the size."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def pixels(image):
    return np.asarray(image).astype(int)


def white_over(rgb, alpha):
    """The exact float formula, independent of the integer one in the module: a/255 c + (1 - a/255) 255."""
    a = np.asarray(alpha, dtype=float)[..., None] / 255
    return a * np.asarray(rgb, dtype=float) + (1 - a) * 255


# --- read_image_file: only regular files, only up to the size limit ----------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^/dev/zero: not a regular file \(a character device\)"):
        read_image_file("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        open_image(Path("/dev/zero"))
    assert time.perf_counter() - start < 1


def test_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"not a regular file \(a directory\); give the path of a file"):
        read_image_file(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(catch(read_image_file, fifo)), daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "reading a FIFO hung"
    assert "not a regular file (a FIFO (named pipe))" in outcome[0]


def catch(function, *args):
    try:
        function(*args)
    except ValueError as err:
        return str(err)
    return "no error"


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets")
def test_socket_is_refused():
    path = Path("/tmp") / f"flowedit-test-{os.getpid()}.sock"  # short: socket paths are limited to ~100 chars
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(ValueError, match=r"not a regular file \(a socket\)"):
            read_image_file(path)
    finally:
        server.close()
        path.unlink(missing_ok=True)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"^image not found: .*nothing\.png$"):
        read_image_file(tmp_path / "nothing.png")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_names_the_reason(tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(ValueError, match=r"secret\.png: cannot read the image \(Permission denied\)$"):
        read_image_file(path)


def test_other_open_errors_name_the_reason(tmp_path):
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"file\.png/inside\.png: cannot read the image \(Not a directory\)$"):
        read_image_file(tmp_path / "file.png" / "inside.png")


def test_file_over_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG" + bytes(2000))
    message = (
        r"big\.png: file is 2004 bytes \(0\.0 MB\), over the limit of 1000 bytes \(0\.0 MB\); "
        r"raise the limit with --max-file-size \(in MB; Python: ImageLimits\(max_bytes=\.\.\.\)\)$"
    )
    with pytest.raises(ValueError, match=message):
        read_image_file(path, ImageLimits(max_bytes=1000))
    assert read_image_file(path, ImageLimits(max_bytes=2004)) == path.read_bytes()

    sparse = tmp_path / "sparse.png"  # 1 TiB of holes: reading it would take forever, fstat does not
    with open(sparse, "wb") as file:
        file.truncate(1 << 40)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"file is 1099511627776 bytes \(1048576\.0 MB\), over the limit of 268435456"):
        read_image_file(sparse)
    assert time.perf_counter() - start < 1


def test_file_that_grows_while_read_is_cut_and_refused(tmp_path, monkeypatch):
    path = tmp_path / "growing.png"
    path.write_bytes(bytes(5000))
    real_fstat = os.fstat

    def fstat_before_growth(fd):  # what fstat said before a writer appended 4990 bytes
        result = list(real_fstat(fd))
        result[6] = 10  # st_size
        return os.stat_result(result)

    monkeypatch.setattr(os, "fstat", fstat_before_growth)
    with pytest.raises(ValueError, match=r"file is over 1000 bytes \(it grew while read\)"):
        read_image_file(path, ImageLimits(max_bytes=1000))
    assert read_image_file(path, ImageLimits(max_bytes=5000)) == bytes(5000)


def test_limits_are_checked():
    assert ImageLimits() == ImageLimits(MAX_PIXELS, MAX_BYTES) == ImageLimits(4096 * 4096, 256 * 1024 * 1024)
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(ValueError, match=rf"^ImageLimits\.max_pixels must be a positive integer, got {bad!r}$"):
            ImageLimits(max_pixels=bad)
    with pytest.raises(ValueError, match=r"^ImageLimits\.max_bytes must be a positive integer, got 0$"):
        ImageLimits(max_bytes=0)


# --- decode_image: pixel limits from the header, corrupt data, one line each ------------------------


def test_10000x10000_png_is_refused_by_pixel_count_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(path)
    assert path.stat().st_size < 100_000  # about 12 KB that would decode to 100 million pixels
    start = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        open_image(path)
    assert time.perf_counter() - start < 2
    assert str(caught.value) == (
        f"{path}: image is 10000x10000 = 100000000 pixels, over the limit of 16777216 pixels; "
        "raise it with --max-pixels 100000000 (Python: ImageLimits(max_pixels=...)) or downscale the image"
    )


def test_30000x30000_gives_our_message_not_a_decompression_bomb_error():
    saved = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning escapes either
        with pytest.raises(ValueError, match=r"^huge\.png: image is 30000x30000 = 900000000 pixels, over the limit"):
            decode_image(header_only_png(30000, 30000), name="huge.png")
    assert Image.MAX_IMAGE_PIXELS is saved  # Pillow's global check is restored


def test_pillow_check_does_not_override_a_raised_limit(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would raise DecompressionBombError at 20
    image = decode_image(png_bytes(Image.new("L", (8, 8), 77)), ImageLimits(max_pixels=64))
    assert image.size == (8, 8) and Image.MAX_IMAGE_PIXELS == 10
    with pytest.raises(ValueError, match=r"image is 8x8 = 64 pixels, over the limit of 63 pixels"):
        decode_image(png_bytes(Image.new("L", (8, 8))), ImageLimits(max_pixels=63))


@pytest.mark.filterwarnings("ignore:Image was not the expected size")
@pytest.mark.parametrize("max_pixels", [1000, 3000])  # Pillow's error (> 2x limit) and its warning (> 1x)
def test_image_nested_in_the_file_is_checked_while_loading(max_pixels):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "ICO", sizes=[(64, 64)])  # one PNG entry
    data = bytearray(buffer.getvalue())
    data[6:8] = b"\x10\x10"  # the directory now claims 16x16; the embedded PNG is still 64x64
    with pytest.raises(ValueError, match=rf"^icon: an image inside the file is over the limit of {max_pixels} pixels"):
        decode_image(bytes(data), ImageLimits(max_pixels=max_pixels), name="icon")
    assert decode_image(bytes(data), ImageLimits(max_pixels=4096), name="icon").size == (64, 64)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not an image", r"^x: not an image Pillow can read \(it starts with b'not an image'\); give a PNG, JPEG"),
        (b"", r"^x: not an image Pillow can read \(no data\)"),
        (png_bytes(Image.new("RGB", (64, 64), "red"))[:-40], r"^x: cannot decode the image, it is truncated or"),
        (header_only_png(50, 50), r"^x: cannot decode the image, it is truncated or corrupt \("),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", r"^x: EPS images are refused"),
    ],
    ids=["text", "empty", "truncated", "short-idat", "eps"],
)
def test_bad_data_gives_one_short_line(data, message):
    with pytest.raises(ValueError, match=message) as caught:
        decode_image(data, name="x")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert caught.value.__cause__ is None and (caught.value.__context__ is None or caught.value.__suppress_context__)


def test_result_is_rgb_loaded_and_detached_from_the_data():
    source = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    data = bytearray(png_bytes(Image.fromarray(source)))
    image = decode_image(data)
    data[:] = bytes(len(data))  # the caller may reuse its buffer
    assert image.mode == "RGB" and image.size == (10, 12) and getattr(image, "fp", None) is None
    np.testing.assert_array_equal(np.asarray(image), source)


def test_first_frame_of_an_animation():
    frames = [Image.new("RGB", (6, 4), colour) for colour in ("red", "blue")]
    for format in ("GIF", "PNG"):  # PNG with append_images is an APNG
        buffer = io.BytesIO()
        frames[0].save(buffer, format, save_all=True, append_images=frames[1:])
        assert pixels(decode_image(buffer.getvalue()))[0, 0].tolist() == [255, 0, 0], format


def test_pillow_globals_are_restored_under_concurrent_use():
    saved = Image.MAX_IMAGE_PIXELS
    small, huge = png_bytes(Image.new("RGB", (4, 4))), header_only_png(30000, 30000)
    failures = []

    def decode_many():
        for data in [small, huge] * 20:
            try:
                decode_image(data)
            except ValueError as err:
                failures.append(str(err))

    workers = [threading.Thread(target=decode_many) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert Image.MAX_IMAGE_PIXELS is saved
    assert len(failures) == 80 and all("30000x30000" in failure for failure in failures)


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


# --- the module itself -----------------------------------------------------------------------------


def test_pillow_and_numpy_are_imported_lazily():
    tree = ast.parse(Path(images_module.__file__).read_text())
    top = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = {alias.name for node in top if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in top if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] in ("PIL", "numpy") for name in names), names
