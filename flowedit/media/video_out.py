"""Videos out: a :class:`Clip` (frames and their rate), the frame rates a GIF and an MP4 hold, and
:func:`save_video`, which writes frames atomically with the edit's record in the file's comment (read back by
:func:`video_record`). Reading is :mod:`flowedit.media.video`.

A rate is never invented. A GIF stores each frame's time as a 16-bit count of 10 ms steps (1 to 65535: 10 ms to
655.35 s a frame, 100 to 0.00153 fps); an MP4 (H.264, yuv420p, CRF 16) its rate as ``num/den`` with den <= 1001,
from 1/1001 fps (one frame per 1001 s) to 10**6 fps as flowedit writes it. :func:`stored_fps` is the rate a file
keeps, the one :func:`save_video` writes and a record states; a rate the format cannot hold is one ``ValueError``
line naming the rate and the range, before anything is written.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import write_atomically
from .._text import short

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEFAULT_FPS",
    "MAX_FPS",
    "MIN_FPS",
    "RATES",
    "VIDEO_SUFFIXES",
    "Clip",
    "positive_fps",
    "save_video",
    "stored_fps",
    "video_record",
]

VIDEO_SUFFIXES = (".gif", ".mp4")  # what flowedit writes; it reads these, MOV, MKV, WebM, AVI and folders
MIN_FPS, MAX_FPS = 1 / 1001, 1e6  # the rates flowedit writes: an MP4's num/den, den <= 1001; num < 2**31
RATES = "1/1001 to 1000000 fps"
_GIF_STEPS = (1, 65535)  # a GIF's frame time in 10 ms steps: a 16-bit count of centiseconds, 0 is "none"
DEFAULT_FPS = 16.0  # Wan's frame rate, for sources that state none (read with a warning)


@dataclass(frozen=True)
class Clip:
    """A video as 8-bit RGB PIL frames of one size and its frame rate in frames per second (positive, finite)."""

    frames: list[Image.Image]
    fps: float = DEFAULT_FPS

    def __post_init__(self):
        object.__setattr__(self, "fps", positive_fps(self.fps, "Clip"))

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size


def positive_fps(value, where: str) -> float:
    """``value`` as a float if it is a positive, finite number (numpy's and ``Fraction`` too), else one line naming
    ``where``'s ``fps``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{where}: fps must be a positive, finite number of frames per second, got {short(value)} "
            f"({type(value).__name__})"
        )
    return float(value)


def stored_fps(output: str | Path, fps: float) -> float:
    """The frame rate a file of ``output``'s kind keeps of ``fps``, which :func:`save_video` writes: a GIF's frame
    time in 10 ms steps (24 fps is stored as 40 ms, 25 fps), an MP4's rate as the nearest fraction of denominator at
    most 1001 (NTSC's 30000/1001 stays 30000/1001). A rate the format cannot hold is one ``ValueError`` line
    naming it and the range."""
    return _written(_video_path(output, "stored_fps"), fps, "stored_fps")[0]


def _video_path(output, where: str) -> Path:
    if not isinstance(output, str | os.PathLike):
        raise ValueError(f"{where}: output must be a file name ending in .gif or .mp4, got {short(output)}")
    output = Path(output)
    if output.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{output}: not a video file name; end it with {' or '.join(VIDEO_SUFFIXES)}")
    return output


def _written(output: Path, fps, where: str) -> tuple[float, int | Fraction]:
    """``(rate kept, what is written)``: a GIF's frame time in ms (``10 round(100 / fps)``, 10 ms to 655.35 s),
    an MP4's rate as ``num/den`` (den <= 1001, from 1/1001 to 10**6 fps)."""
    fps = positive_fps(fps, where)
    if output.suffix.lower() == ".gif":
        low, high = _GIF_STEPS
        steps = round(100 / fps) if fps > 100 / 2**20 else high + 1  # frame time in 10 ms steps
        if not low <= steps <= high:
            raise ValueError(
                f"{output}: a GIF cannot hold {fps:g} fps: its frame times are 10 ms to {high / 100:g} s in 10 ms "
                f"steps ({100 / low:g} to {100 / high:.3g} fps); write an MP4 ({RATES})"
            )
        return 1000.0 / (10 * steps), 10 * steps
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"{output}: an MP4 cannot hold {fps:g} fps; flowedit writes MP4 rates of {RATES}")
    rate = Fraction(fps).limit_denominator(1001)
    return float(rate), rate


def _frames_to_write(frames, mp4: bool) -> list[Image.Image]:
    """``frames`` (a list or tuple of PIL images of one size, a :class:`Clip` or a uint8 array (F, H, W, 3)) as a
    list of PIL images, else one line naming ``frames``."""
    import numpy as np
    from PIL import Image

    takes = "a non-empty list of PIL images of one size (or a uint8 array of shape (F, H, W, 3))"
    if isinstance(frames, Clip):
        frames = frames.frames
    if isinstance(frames, np.ndarray) and frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3:
        frames = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    if not isinstance(frames, list | tuple):
        raise ValueError(f"save_video: frames must be {takes}, got {type(frames).__name__} {short(frames, 40)}")
    if not frames:
        raise ValueError(f"save_video: frames must be {takes}, got an empty {type(frames).__name__}")
    for i, frame in enumerate(frames):
        if not isinstance(frame, Image.Image):
            raise ValueError(f"save_video: frames must be {takes}, got a {type(frame).__name__} as frame {i}")
    sizes = sorted({frame.size for frame in frames})
    if len(sizes) > 1:
        raise ValueError(f"save_video: frames must be of one size, got {', '.join(f'{w}x{h}' for w, h in sizes)}")
    if mp4 and min(sizes[0]) < 2:
        raise ValueError(f"save_video: an MP4's frames are at least 2x2 pixels, got {sizes[0][0]}x{sizes[0][1]}")
    return list(frames)


def save_video(frames: list[Image.Image], output: str | Path, fps: float, record: dict | None = None) -> None:
    """Write ``frames`` atomically as a GIF (Pillow, looping) or an MP4 (H.264, yuv420p, CRF 16) by the suffix,
    at ``fps`` frames per second as :func:`stored_fps` keeps it (a GIF stores frame times in 10 ms steps);
    ``record`` (JSON) goes into the file's comment.

    Raises:
        ValueError: one line naming the argument (``frames``, ``output``, ``fps``, ``record``) and what it takes,
            or the output and the rates its format holds (a GIF: 10 ms to 655.35 s a frame; an MP4: 1/1001 to
            10**6 fps), before anything is written.
    """
    output = _video_path(output, "save_video")
    suffix = output.suffix.lower()
    frames = _frames_to_write(frames, suffix == ".mp4")
    _, written = _written(output, fps, "save_video")
    if record is not None and not isinstance(record, dict):
        raise ValueError(f"save_video: record must be a dict (JSON) or None, got {short(record)}")
    from .._text import dumps_strict

    comment = "" if record is None else dumps_strict(record)

    def write_gif(tmp: Path) -> None:
        duration = written
        first, *rest = frames
        first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0, comment=comment)

    def write_mp4(tmp: Path) -> None:
        import av
        import numpy as np

        width, height = frames[0].size
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=written)
            stream.width, stream.height, stream.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
            stream.options = {"crf": "16"}
            if comment:
                container.metadata["comment"] = comment
            for frame in frames:
                pixels = np.asarray(frame.convert("RGB"))[: stream.height, : stream.width]
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")))
            container.mux(stream.encode())

    write_atomically(output, write_gif if suffix == ".gif" else write_mp4)


def video_record(path: str | Path) -> dict | None:
    """The record :func:`save_video` stored in a GIF's or MP4's comment, or None (none, unreadable, not ours)."""
    import av

    path = Path(path)
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image

            with Image.open(path) as gif:
                comment = gif.info.get("comment", b"")
            text = comment.decode() if isinstance(comment, bytes) else str(comment)
        else:
            with av.open(str(path), format="mp4") as container:  # our own MP4s only: no demuxer probing
                text = container.metadata.get("comment", "")
        from .._text import loads_strict

        record = loads_strict(text) if text else None
    except (OSError, ValueError, RecursionError, av.FFmpegError):
        return None
    return record if isinstance(record, dict) else None
