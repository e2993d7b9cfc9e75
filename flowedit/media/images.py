"""Source images from untrusted paths and bytes: bounded reads, pixel limits checked before decoding, 8-bit RGB.

``Image.open(path).convert("RGB")`` is unsafe on what batch files and users hand in: it reads ``/dev/zero`` until
memory runs out, hangs on a FIFO, decodes a 300 KB PNG of 10000x10000 pixels into gigabytes, fails with a
``DecompressionBombError`` traceback at 30000x30000, turns 16-bit grayscale white and ignores EXIF orientation.
Here every step is bounded and every failure is one ``ValueError`` line that names the file and the fix:

    read_image_file   regular files only, at most ``ImageLimits.max_bytes`` bytes (CLI ``--max-file-size``, MB)
    decode_frame      width * height checked against ``ImageLimits.max_pixels`` (CLI ``--max-pixels``) from the
                      header, BEFORE any pixel is decoded (nested images too); first frame; EXIF orientation
                      applied; a file Pillow cannot read is named by its kind, never quoted
    decode_image      :func:`decode_frame` + :func:`~flowedit.media.modes.to_rgb` (alpha over white): a source image
    open_image        read_image_file + decode_image

PIL is imported inside the functions, so importing :mod:`flowedit.media` stays light.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from .._files import read_regular_file
from .modes import to_rgb

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # image files flowedit writes and reads
MAX_PIXELS = 4096 * 4096  # default pixel limit (width * height), the largest real use
MAX_BYTES = 256 * 1024 * 1024  # default file-size limit
MAX_FRAMES = 257  # default frame limit of a video (4k + 1; Wan makes 81)
MAX_VIDEO_PIXELS = 2**28  # default limit of a video's pixels in all: 129 frames of 1920x1080, 0.8 GB as RGB

_MIB = 1024 * 1024
_CHUNK = _MIB  # read size once the file has outgrown what fstat reported
_DETAIL_CHARS = 200  # Pillow's own words in an error message are cut to this length
_DECODED_WHILE_OPENING = ("ICO",)  # Pillow formats whose open() already decodes pixels
# Image.MAX_IMAGE_PIXELS is module state of Pillow: concurrent decode_image calls must not interleave the
# save / set / restore below (a lost restore would leave Pillow's check off for the whole process).
PILLOW_GLOBALS = threading.Lock()


def _limit(default: int, option: str, help: str, unit: int = 1, unit_name: str = ""):
    """A field of :class:`ImageLimits` with the command-line option that sets it (in ``unit``s) and its help."""
    return field(default=default, metadata={"option": option, "help": help, "unit": unit, "unit_name": unit_name})


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on one source image or video: pixels (width * height, of each frame), file size in bytes, frames,
    and the pixels of a whole video (frames x width x height).

    Each field declares the command-line option that sets it (``--max-pixels``, ``--max-file-size`` in MB,
    ``--max-frames``, ``--max-video-pixels``); :meth:`from_options` reads them, and the CLI's options and help
    derive from these fields.
    """

    max_pixels: int = _limit(MAX_PIXELS, "--max-pixels", "largest input image (or video frame), width x height")
    max_bytes: int = _limit(MAX_BYTES, "--max-file-size", "largest input file", 2**20, "megabytes")
    max_frames: int = _limit(MAX_FRAMES, "--max-frames", "longest input video in frames")
    max_video_pixels: int = _limit(
        MAX_VIDEO_PIXELS, "--max-video-pixels", "largest input video, frames x width x height"
    )

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ImageLimits.{f.name} must be a positive integer, got {value!r}")

    @classmethod
    def from_options(cls, **values: float | None) -> ImageLimits:
        """Limits from option values keyed by field name, in each option's unit (None: the default); a value that
        is not positive and finite, or under one byte, is one ``ValueError`` line naming the option."""
        chosen = {}
        for f in fields(cls):
            value, meta = values.get(f.name), f.metadata
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ValueError(f"{meta['option']} must be a positive number, got {value}")
            chosen[f.name] = int(value * meta["unit"])
            if chosen[f.name] < 1:
                raise ValueError(f"{meta['option']} {value} {meta['unit_name']} is less than one byte")
        return cls(**chosen)


class _Refused(ValueError):
    """Our own refusal inside the Pillow block: passed on as it is, not reworded as a Pillow failure."""


def read_image_file(path, limits: ImageLimits = ImageLimits(), what: str = "image") -> bytes:
    """Bytes of a regular file, bounded: at most ``limits.max_bytes`` bytes are read, and nothing else is.

    The file is opened with ``O_NONBLOCK`` (a FIFO cannot hang the open) and checked with ``fstat`` on that
    same descriptor: directories, FIFOs, devices (``/dev/zero``) and sockets are refused, and so is a file
    whose size is over the limit, before a byte is read. A file that grows while it is read is cut at
    ``max_bytes + 1`` bytes and refused too.

    Raises:
        ValueError: ``image not found: {path}``; ``{path}: not a regular file (...)``; ``{path}: file is ...,
            over the limit of ... bytes``; ``{path}: cannot read the image (<strerror>)``.
    """
    return read_regular_file(
        path,
        limits.max_bytes,
        what,
        "raise the limit with --max-file-size (in MB; Python: ImageLimits(max_bytes=...))",
    )


def check_size(size: tuple[int, int], limits: ImageLimits, name: str, what: str = "image") -> None:
    width, height = size
    if width < 1 or height < 1:
        raise _Refused(f"{name}: {what} is {width}x{height} pixels, which is empty")
    if width * height > limits.max_pixels:
        raise _Refused(
            f"{name}: {what} is {width}x{height} = {width * height} pixels, over the limit of {limits.max_pixels} "
            f"pixels; raise it with --max-pixels {width * height} (Python: ImageLimits(max_pixels=...)) "
            f"or downscale the {what}"
        )


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as the header states them, for a message only; None if Pillow cannot tell.

    Called with Pillow's bomb check off. ICO is left out: Pillow decodes an ICO entry while opening it.
    """
    from PIL import Image

    Image.init()
    formats = [name for name in Image.OPEN if name not in _DECODED_WHILE_OPENING]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as header:
            return header.size
    except Exception:  # whatever fails here, the caller still reports Pillow's own pixel count
        return None


def decode_image(data: bytes, limits: ImageLimits = ImageLimits(), name: str = "image") -> Image.Image:
    """:func:`decode_frame` + :func:`to_rgb`: an 8-bit RGB image, loaded, EXIF orientation applied."""
    return to_rgb(decode_frame(data, limits, name))


def decode_frame(data: bytes, limits: ImageLimits = ImageLimits(), name: str = "image") -> Image.Image:
    """The first frame of `data` in its own mode (fully loaded, detached from `data`), EXIF orientation applied.

    No pixel is decoded before width * height is checked against ``limits.max_pixels``: Pillow's own bomb
    check (``Image.MAX_IMAGE_PIXELS``, which it applies to the header at open and to images nested in the
    file, ICO entries and GIF frames, while loading) runs with OUR limit and its ``DecompressionBombWarning``
    is an error, under a lock and restored in ``finally``. When it fires, the header is read once more with
    the check off, only to name the size in our message (Pillow's message states neither the size nor the
    fix). Then: EPS is refused (Pillow would run Ghostscript on untrusted input), ``load()``, the size is
    checked again (ICO and ICNS pick their size while loading), ``ImageOps.exif_transpose``.

    Multi-frame files (GIF, APNG, TIFF): the first frame; ICO: the largest entry, as Pillow opens it.
    `name` only labels the messages (a path, or "image"). No message quotes the file's content: data Pillow
    cannot read is named by its kind (:func:`file_kind`), and byte strings in Pillow's own words are left out.

    Raises:
        ValueError: one line starting with `name`: ``not an image Pillow can read (<its kind>)``,
            ``image is WxH = N pixels, over the limit of M pixels; raise it with --max-pixels ...``,
            ``an image inside the file is over the limit of M pixels (...)``, ``cannot decode the image,
            it is truncated or corrupt (...)``, ``EPS images are refused ...``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    with PILLOW_GLOBALS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = limits.max_pixels
            try:
                with Image.open(io.BytesIO(data)) as opened:
                    check_size(opened.size, limits, name)  # Pillow checked it already, but not for empty images
                    if opened.format == "EPS":
                        raise _Refused(
                            f"{name}: EPS images are refused (Pillow would run Ghostscript on them); "
                            f"convert it to PNG first"
                        )
                    opened.load()
                    check_size(opened.size, limits, name)
                    image = ImageOps.exif_transpose(opened)  # a new image (a copy if there is no orientation)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                Image.MAX_IMAGE_PIXELS = None
                size = _header_size(data)
                if size is not None:
                    check_size(size, limits, name)  # the header is over the limit: our message, with WxH
                raise _Refused(  # the header is within the limit: an image nested in the file is not
                    f"{name}: an image inside the file is over the limit of {limits.max_pixels} pixels "
                    f"({one_line(err)}); raise it with --max-pixels (Python: ImageLimits(max_pixels=...))"
                ) from None
        except _Refused:
            raise
        except UnidentifiedImageError:
            raise ValueError(
                f"{name}: not an image Pillow can read ({file_kind(data)}); give a PNG, JPEG, WebP, GIF, TIFF or "
                f"BMP file"
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
            detail = one_line(_BYTES_LITERAL.sub("<bytes>", f"{type(err).__name__}: {err}"))
            raise ValueError(f"{name}: cannot decode the image, it is truncated or corrupt ({detail})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    return image


# (signature, offset, kind): the kinds of file a user hands in by mistake, named without quoting them
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", 0, "a PNG file, damaged or of a kind Pillow cannot open"),
    (b"\xff\xd8\xff", 0, "a JPEG file, damaged or of a kind Pillow cannot open"),
    (b"GIF8", 0, "a GIF file, damaged or of a kind Pillow cannot open"),
    (b"WEBP", 8, "a WebP file, damaged or of a kind Pillow cannot open"),
    (b"II*\x00", 0, "a TIFF file, damaged or of a kind Pillow cannot open"),
    (b"MM\x00*", 0, "a TIFF file, damaged or of a kind Pillow cannot open"),
    (b"%PDF-", 0, "a PDF document"),
    (b"PK\x03\x04", 0, "a ZIP archive (or a document made of one: DOCX, ODT, ...)"),
    (b"\x1f\x8b", 0, "gzip-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"),
    (b"\x7fELF", 0, "an ELF program"),
    (b"MZ", 0, "a Windows program"),
    (b"ftyp", 4, "an MP4/MOV/HEIF file (a video, or an image format Pillow does not read)"),
    (b"\x1aE\xdf\xa3", 0, "a Matroska/WebM video"),
    (b"OggS", 0, "an Ogg media file"),
    (b"ID3", 0, "an MP3 audio file"),
    (b"SQLite format 3\x00", 0, "an SQLite database"),
    (b"<svg", 0, "an SVG drawing (vector graphics; export it as PNG)"),
    (b"<?xml", 0, "an XML document (an SVG drawing? export it as PNG)"),
)
_BYTES_LITERAL = re.compile(r"""\bb(['"]).*?(?<!\\)\1""")  # a bytes repr in Pillow's words: content of the file


def file_kind(data: bytes) -> str:
    """What ``data`` looks like, for a message that must not quote it: "no data", a kind its first bytes name
    (a PDF document, a ZIP archive, an ELF program, an MP4 file, ...), "text, not image data" for UTF-8 text,
    else "binary data of an unknown kind". Never any of the bytes themselves."""
    if not data:
        return "no data"
    start = bytes(data[:64])
    for signature, offset, kind in _SIGNATURES:
        if start[offset : offset + len(signature)] == signature:
            return kind
    if start[:2] in (b"\xff\xfe", b"\xfe\xff") or start[:3] == b"\xef\xbb\xbf":
        return "text, not image data"
    try:
        text = bytes(data[:4096]).decode("utf-8")
    except UnicodeDecodeError as err:
        text = bytes(data[: err.start]).decode("utf-8") if err.start >= 4090 else None  # cut inside a character
    if text is not None and all(c.isprintable() or c in "\t\n\r\f\x00" for c in text):
        return "text, not image data"
    return "binary data of an unknown kind"


def open_image(path, limits: ImageLimits = ImageLimits()) -> Image.Image:
    """:func:`read_image_file` + :func:`decode_image`: an 8-bit RGB, loaded image; messages name `path`."""
    return decode_image(read_image_file(path, limits), limits, name=str(path))
