"""Untrusted source images: special files, size and pixel limits before decoding, corrupt data, modes to RGB."""

import ast
import io
import os
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from image_support import header_only_png, pixels, png_bytes
from PIL import Image

import flowedit.media.images as images_module
from flowedit.media.images import (
    MAX_BYTES,
    MAX_PIXELS,
    ImageLimits,
    decode_image,
    open_image,
    read_image_file,
)

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
        r"big\.png: file is 2004 bytes \(0\.00191 MB\), over the limit of 1000 bytes \(0\.000954 MB\); "
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
        (b"not an image", r"^x: not an image Pillow can read \(text, not image data\); give a PNG, JPEG"),
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


# --- the module itself -----------------------------------------------------------------------------


def test_pillow_and_numpy_are_imported_lazily():
    tree = ast.parse(Path(images_module.__file__).read_text())
    top = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = {alias.name for node in top if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in top if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] in ("PIL", "numpy") for name in names), names
