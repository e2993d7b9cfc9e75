"""Videos in and out: GIF, MP4 (and what else FFmpeg reads) or a folder of frames, bounded before decoding.

A video file is untrusted input, read like an image (:mod:`flowedit.models._images`): regular files only, at most
``ImageLimits.max_bytes`` bytes read into memory, only the containers flowedit knows opened (by their signature),
each frame's size checked against ``max_pixels`` before it is kept, the frame count against ``max_frames`` and the
pixels of the whole clip against ``max_video_pixels``, from the header where it states them and while decoding. Every failure is one ``ValueError``
line that names the file and the fix. GIFs are read and written with Pillow; other containers with PyAV, whose
wheels ship their own FFmpeg (MP4 is written as H.264, yuv420p, CRF 16: near lossless, playable everywhere).

Wan's causal VAE takes ``F = 4k + 1`` frames (the first alone, then groups of four): :func:`fit_frames` keeps the
longest such prefix and warns about the frames it drops. A clip of fewer than 5 frames is refused.
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import write_atomically
from ._images import (
    _PILLOW_GLOBALS,
    IMAGE_SUFFIXES,
    ImageLimits,
    _check_size,
    _one_line,
    open_image,
    read_image_file,
    to_rgb,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "VIDEO_SUFFIXES",
    "Clip",
    "decode_video",
    "fit_frames",
    "read_video",
    "save_video",
    "stored_fps",
    "video_record",
]

VIDEO_SUFFIXES = (".gif", ".mp4")  # what flowedit writes; it reads these, MOV, MKV, WebM, AVI and folders
MIN_FRAMES = 5  # the shortest clip with a second latent frame (4k + 1, k = 1)
DEFAULT_FPS = 16.0  # Wan's frame rate, for GIFs without frame durations and lists of frames


@dataclass(frozen=True)
class Clip:
    """A video as 8-bit RGB PIL frames of one size and its frame rate in frames per second."""

    frames: list[Image.Image]
    fps: float = DEFAULT_FPS

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size


def _natural(name: str) -> list:
    """A sort key in which ``frame_2`` comes before ``frame_10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class _Frames:
    """Frames gathered within the limits: at most ``max_frames``, each within ``max_pixels``, and at most
    ``max_video_pixels`` in all (what the RGB frames, and four times as much in float32, will hold)."""

    def __init__(self, name: str, limits: ImageLimits):
        self.name, self.limits, self.frames, self.pixels = name, limits, [], 0

    def expect(self, count: int, size: tuple[int, int]) -> None:
        """Refuse from a header: ``count`` frames (0: unknown) of ``size``."""
        _check_size(size, self.limits, self.name, "frame")
        if count > self.limits.max_frames:
            raise _too_many(self.name, count, self.limits)
        if count * size[0] * size[1] > self.limits.max_video_pixels:
            raise self._too_large(f"{count} frames of {size[0]}x{size[1]}")

    def add(self, frame) -> None:
        if len(self.frames) == self.limits.max_frames:
            raise _too_many(self.name, None, self.limits)
        _check_size(frame.size, self.limits, self.name, "frame")
        self.pixels += frame.size[0] * frame.size[1]
        if self.pixels > self.limits.max_video_pixels:
            raise self._too_large(f"more than {len(self.frames)} frames of up to {frame.size[0]}x{frame.size[1]}")
        self.frames.append(frame)

    def _too_large(self, what: str) -> ValueError:
        return ValueError(
            f"{self.name}: the video has {what}, over the limit of {self.limits.max_video_pixels} pixels in all; "
            f"cut it shorter or smaller, or raise it with --max-video-pixels (Python: ImageLimits(max_video_pixels=...))"
        )

    def clip(self, fps: float) -> Clip:
        name, frames = self.name, self.frames
        if not frames:
            raise ValueError(f"{name}: the video has no frames; give a GIF, an MP4 or a folder of images")
        if len(frames) < MIN_FRAMES:
            raise ValueError(
                f"{name}: the video has {len(frames)} frame(s); a video edit needs at least {MIN_FRAMES} "
                f"(the VAE takes 4k + 1 frames); edit a single frame with an image model"
            )
        sizes = {frame.size for frame in frames}
        if len(sizes) > 1:
            raise ValueError(f"{name}: the frames differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})")
        fps = float(fps) if isinstance(fps, int | float) and 0 < fps < 1000 else DEFAULT_FPS
        return Clip([to_rgb(frame) for frame in frames], fps)


def _too_many(name: str, count: int | None, limits: ImageLimits) -> ValueError:
    count = f"more than {limits.max_frames}" if count is None else count
    return ValueError(
        f"{name}: the video has {count} frames, over the limit of {limits.max_frames}; cut it shorter or raise "
        f"the limit with --max-frames (Python: ImageLimits(max_frames=...))"
    )


def _read_gif(data: bytes, name: str, limits: ImageLimits) -> Clip:
    """Every frame's size is checked before it is kept; Pillow's own bomb check runs with our limit (a later frame
    may enlarge the canvas), under the lock that guards Pillow's global setting."""
    from PIL import Image, ImageSequence

    gathered, durations = _Frames(name, limits), []
    corrupt = f"{name}: cannot decode the GIF, it is truncated or corrupt"
    with _PILLOW_GLOBALS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = limits.max_pixels
            with Image.open(io.BytesIO(data)) as gif:
                _check_size(gif.size, limits, name, "frame")
                for frame in ImageSequence.Iterator(gif):
                    _check_size(frame.size, limits, name, "frame")
                    durations.append(frame.info.get("duration") or 0)
                    gathered.add(to_rgb(frame.convert("RGBA") if frame.mode == "P" else frame.copy()))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ValueError(
                f"{name}: a frame is over the limit of {limits.max_pixels} pixels ({_one_line(err)}); raise it with "
                f"--max-pixels (Python: ImageLimits(max_pixels=...))"
            ) from None
        except ValueError as err:
            if str(err).startswith(name):
                raise
            raise ValueError(f"{corrupt} ({_one_line(err)})") from None
        except (OSError, EOFError, SyntaxError) as err:
            raise ValueError(f"{corrupt} ({_one_line(err)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    timed = [d for d in durations if d > 0]  # frames without a duration do not speed the clip up
    return gathered.clip(1000.0 * len(timed) / sum(timed) if timed else DEFAULT_FPS)


def _container_format(data: bytes) -> str | None:
    """The FFmpeg demuxer for these bytes, from their signature: only these are opened (no probing of every
    demuxer FFmpeg has, some of which read other files or URLs a playlist names)."""
    if data[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "mp4"  # ISO media and QuickTime: MP4, MOV, M4V
    if data[:4] == b"\x1aE\xdf\xa3":
        return "matroska"  # MKV, WebM
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    return None


def _read_container(data: bytes, name: str, limits: ImageLimits) -> Clip:
    import av

    demuxer = _container_format(data)
    if demuxer is None:
        raise ValueError(
            f"{name}: not a video file flowedit reads (it starts with {bytes(data[:12])!r}); give a GIF, MP4, MOV, "
            f"MKV, WebM or AVI file, or a folder of images"
        )
    gathered = _Frames(name, limits)
    try:
        with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
            if not container.streams.video:
                raise ValueError(f"{name}: the file holds no video stream")
            stream = container.streams.video[0]
            codec = stream.codec_context
            if codec is None or not codec.width or not codec.height:
                raise ValueError(f"{name}: the video stream states no frame size; the file is truncated or corrupt")
            gathered.expect(stream.frames or 0, (codec.width, codec.height))
            rate = stream.average_rate or stream.guessed_rate
            for frame in container.decode(stream):
                _check_size((frame.width, frame.height), limits, name, "frame")  # before converting it
                gathered.add(frame.to_image())
    except av.FFmpegError as err:
        detail = getattr(err, "strerror", None) or _one_line(err) or type(err).__name__
        raise ValueError(f"{name}: cannot decode the video, it is truncated or corrupt ({detail})") from None
    return gathered.clip(float(rate) if rate else DEFAULT_FPS)


def _read_folder(folder: Path, limits: ImageLimits, fps: float) -> Clip:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural(p.name))
    if len(files) > limits.max_frames:
        raise _too_many(str(folder), len(files), limits)
    gathered = _Frames(str(folder), limits)
    for path in files:
        gathered.add(open_image(path, limits))
    return gathered.clip(fps)


def read_video(video, limits: ImageLimits | None = None, fps: float | None = None) -> Clip:
    """A :class:`Clip` from a GIF, an MP4 (or a MOV, MKV, WebM, AVI), a folder of image files (sorted by name,
    numbers in order: ``frame_2`` before ``frame_10``), a list of PIL images or a :class:`Clip`, within ``limits``.

    The frame rate is the file's (GIF: from the frame durations; 16, Wan's, where it states none); a folder or a
    list takes ``fps`` (default 16).

    Raises:
        ValueError: one line naming the video: not found, not a regular file, over a limit (bytes, pixels of a
            frame or of the whole clip, frames), not a video, corrupt, no frames, fewer than 5 frames, frames of
            different sizes.
    """
    limits = limits or ImageLimits()
    if isinstance(video, Clip):
        video, fps = video.frames, video.fps
    if isinstance(video, list | tuple):
        gathered = _Frames("video", limits)
        for frame in video:
            if not hasattr(frame, "size") or not hasattr(frame, "mode"):
                raise ValueError(f"a video as a list holds PIL images, not {type(frame).__name__}")
            gathered.add(frame)
        return gathered.clip(fps or DEFAULT_FPS)
    if not isinstance(video, str | os.PathLike):
        raise ValueError(
            f"a video is a list of PIL images, a GIF, an MP4 or a folder of frames, not a {type(video).__name__}"
        )
    path = Path(video)
    if path.is_dir():
        return _read_folder(path, limits, fps or DEFAULT_FPS)
    return decode_video(read_image_file(path, limits, "video"), limits, str(path))


def decode_video(data: bytes, limits: ImageLimits | None = None, name: str = "video") -> Clip:
    """A :class:`Clip` from a video file's bytes (GIF, MP4, MOV, MKV, WebM, AVI), within ``limits``; ``name``
    labels the messages."""
    limits = limits or ImageLimits()
    if not data:
        raise ValueError(f"{name}: the file is empty; give a GIF, an MP4 or a folder of images")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _read_gif(data, name, limits)
    return _read_container(data, name, limits)


def fit_frames(clip: Clip, temporal_factor: int = 4) -> Clip:
    """The longest prefix of ``4k + 1`` frames (``temporal_factor`` 4), with a warning when frames are dropped."""
    count = len(clip.frames)
    keep = (count - 1) // temporal_factor * temporal_factor + 1
    if keep != count:
        warnings.warn(
            f"{count} frames is not {temporal_factor}k + 1 (the VAE's rule): kept the first {keep}, "
            f"dropped the last {count - keep}",
            stacklevel=3,
        )
    return Clip(clip.frames[:keep], clip.fps)


def stored_fps(output: str | Path, fps: float) -> float:
    """The frame rate a file of ``output``'s kind keeps of ``fps``: a GIF's frame time in 10 ms steps (24 fps is
    stored as 40 ms, 25 fps), an MP4's rate as a fraction of denominator at most 1001 (29.97 is 30000/1001)."""
    if Path(output).suffix.lower() == ".gif":
        return 1000.0 / _gif_duration(fps)
    return float(_mp4_rate(fps))


def _gif_duration(fps: float) -> int:
    return max(10, round(1000.0 / fps / 10) * 10)


def _mp4_rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def save_video(frames: list[Image.Image], output: str | Path, fps: float, record: dict | None = None) -> None:
    """Write ``frames`` atomically as a GIF (Pillow, looping) or an MP4 (H.264, yuv420p, CRF 16) by the suffix,
    at ``fps`` frames per second (a GIF stores frame durations in 10 ms units); ``record`` (JSON) goes into the
    file's comment."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{output}: not a video file name; end it with {' or '.join(VIDEO_SUFFIXES)}")
    from .._records import _json

    comment = "" if record is None else _json(record)

    def write_gif(tmp: Path) -> None:
        duration = _gif_duration(fps)
        first, *rest = frames
        first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0, comment=comment)

    def write_mp4(tmp: Path) -> None:
        import av
        import numpy as np

        width, height = frames[0].size
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=_mp4_rate(fps))
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
        from .._records import _reject_constant

        record = json.loads(text, parse_constant=_reject_constant) if text else None
    except (OSError, ValueError, RecursionError, av.FFmpegError):
        return None
    return record if isinstance(record, dict) else None
