"""Media objects of an edit: a source (image or video) read bounded and fingerprinted once, and an output written
atomically with its record inside, and read back.

One fingerprint, whichever command reads the source: ``source_sha256`` is the SHA-256 of the decoded 8-bit RGB
pixels (mode, size and bytes of each frame, in order; a video's frame rate too), never of the file's bytes, so a
path and the same picture in memory are the same source, and ``flowedit edit``, ``run`` and ``sweep`` agree.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import write_atomically
from .._text import dumps_strict, loads_strict

__all__ = [
    "RECORD_KEY",
    "Source",
    "embedded_record",
    "fingerprint",
    "read_mask",
    "read_source",
    "save_image",
    "save_output",
]

RECORD_KEY = "flowedit"  # the PNG text chunk that holds an output's record


def fingerprint(frames: list, fps: float | None = None) -> str:
    """SHA-256 of PIL images' modes, sizes and pixels (one image, or a video's frames in order, and its ``fps``)."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(f"{frame.mode} {frame.size[0]}x{frame.size[1]}\n".encode() + frame.tobytes())
    if fps is not None:
        digest.update(f"fps {float(fps)!r}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Source:
    """A source as it will be edited: ``picture`` (an RGB PIL image, or a :class:`~flowedit.models.Clip`), its
    ``sha256`` (:func:`fingerprint`) and ``path`` (None for a picture handed in memory)."""

    media: str  # "image" or "video"
    picture: Any
    sha256: str
    path: Path | None = None

    @property
    def frames(self) -> list:
        """The source's frames (one for an image)."""
        return self.picture.frames if self.media == "video" else [self.picture]

    @property
    def fps(self) -> float | None:
        return self.picture.fps if self.media == "video" else None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"{self.media} in memory"


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def read_source(source: Any, media: str, limits) -> Source:
    """``source`` as a :class:`Source` of ``media``: an image (a path, or a PIL image) or a video (a path to a
    GIF, MP4, ... or a folder of frames, a list of PIL images, a Clip), read within ``limits``
    (:class:`~flowedit.models.ImageLimits`); ``ValueError`` in one line if it cannot be."""
    if isinstance(source, Source):
        if source.media != media:
            raise ValueError(
                f"the source {source} is {'a video' if source.media == 'video' else 'an image'}; "
                f"this model edits {media}s"
            )
        return source
    path = Path(source) if _is_path(source) else None
    if media == "video":
        from .video import read_video

        clip = read_video(source, limits)
        return Source("video", clip, fingerprint(clip.frames, clip.fps), path)
    from .images import open_image
    from .modes import as_picture, to_rgb

    picture = open_image(source, limits) if path is not None else to_rgb(as_picture(source, "image"))
    return Source("image", picture, fingerprint([picture]), path)


def read_mask(mask: Any, limits) -> Source:
    """A local edit's mask (a path, a PIL image or a uint8 array; white = edit, alpha ignored) as a mode-"L" image,
    with its fingerprint; ``ValueError`` if it cannot be read or is all black (nothing to edit)."""
    from .masks import open_mask, pixel_mask
    from .modes import as_picture, to_gray

    if isinstance(mask, Source):  # read already
        return mask
    path = Path(mask) if _is_path(mask) else None
    picture = open_mask(mask, limits) if path is not None else to_gray(as_picture(mask, "mask"))
    pixel_mask(picture, picture.size)  # all black is refused now, before any model work
    return Source("image", picture, fingerprint([picture]), path)


def save_image(image, output: str | Path, record: dict | None = None) -> None:
    """Write a PIL image atomically; a PNG also carries ``record`` (as JSON in a ``flowedit`` text chunk)."""
    output = Path(output)
    options = {}
    if record is not None and output.suffix.lower() == ".png":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text(RECORD_KEY, dumps_strict(record))
        options["pnginfo"] = info
    write_atomically(output, lambda tmp: image.save(tmp, **options))  # the format follows the suffix


def save_output(picture, output: str | Path, record: dict, fps: float | None = None) -> None:
    """Write an edit atomically with its record: an image (PNG keeps the record) or, given ``fps``, a video's
    frames (GIF or MP4, the record in the comment)."""
    if fps is None:
        save_image(picture, output, record)
    else:
        from .video import save_video

        save_video(picture, output, fps, record)


def embedded_record(output: str | Path) -> dict | None:
    """The record inside an output PNG (or MP4, GIF), or None (no such file, a symbolic link, not flowedit's)."""
    from PIL import Image

    from .video import VIDEO_SUFFIXES, video_record

    output = Path(output)
    try:
        if not stat.S_ISREG(os.lstat(output).st_mode):
            return None
        if output.suffix.lower() in VIDEO_SUFFIXES:
            return video_record(output)
        with Image.open(output) as image:
            record = loads_strict(image.info.get(RECORD_KEY, "null"))
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None
    return record if isinstance(record, dict) else None
