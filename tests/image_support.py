"""Helpers of the image tests: PNGs written by Pillow or byte by byte, pixel arrays, alpha over white."""

import io
import struct
import zlib

import numpy as np


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
