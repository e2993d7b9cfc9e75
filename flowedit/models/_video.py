"""Videos in and out: GIF, MP4 (and what else FFmpeg reads) or a folder of frames, bounded before decoding.

A video file is untrusted input, read like an image (:mod:`flowedit.models._images`): regular files only, at most
``ImageLimits.max_bytes`` bytes read into memory, the frame size checked against ``max_pixels`` from the header and
the frame count against ``max_frames`` before (and while) frames are decoded. Every failure is one ``ValueError``
line that names the file and the fix. GIFs are read and written with Pillow; other containers with PyAV, whose
wheels ship their own FFmpeg (MP4 is written as H.264, yuv420p, CRF 16: near lossless, playable everywhere).

Wan's causal VAE takes ``F = 4k + 1`` frames (the first alone, then groups of four): :func:`fit_frames` keeps the
longest such prefix and warns about the frames it drops. A clip of fewer than 5 frames is refused.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import write_atomically
from ._images import ImageLimits, _check_size, open_image, read_image_file, to_rgb

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["VIDEO_SUFFIXES", "Clip", "decode_video", "fit_frames", "read_video", "save_video", "video_record"]

VIDEO_SUFFIXES = (".gif", ".mp4")  # what flowedit writes; it reads these, .mov, .mkv, .webm, .avi and folders
READ_SUFFIXES = VIDEO_SUFFIXES + (".mov", ".mkv", ".webm", ".avi", ".m4v")
MIN_FRAMES = 5  # the shortest clip with a second latent frame (4k + 1, k = 1)
DEFAULT_FPS = 16.0  # Wan's frame rate, for GIFs without frame durations and lists of frames
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")  # the files of a folder of frames


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


def _checked(frames: list[Image.Image], fps: float, name: str, limits: ImageLimits) -> Clip:
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
    if not (0 < fps < 1000):
        fps = DEFAULT_FPS
    return Clip([to_rgb(frame) for frame in frames], float(fps))


def _too_many(name: str, count: int | None, limits: ImageLimits) -> ValueError:
    count = f"more than {limits.max_frames}" if count is None else count
    return ValueError(
        f"{name}: the video has {count} frames, over the limit of {limits.max_frames}; cut it shorter or raise "
        f"the limit with --max-frames (Python: ImageLimits(max_frames=...))"
    )


def _read_gif(data: bytes, name: str, limits: ImageLimits) -> Clip:
    from PIL import Image, ImageSequence

    try:
        with Image.open(io.BytesIO(data)) as gif:
            _check_size(gif.size, limits, name)
            frames, durations = [], []
            for frame in ImageSequence.Iterator(gif):
                if len(frames) == limits.max_frames:
                    raise _too_many(name, None, limits)
                durations.append(frame.info.get("duration") or 0)
                frames.append(to_rgb(frame.convert("RGBA") if frame.mode == "P" else frame.copy()))
    except ValueError as err:
        if str(err).startswith(name):
            raise
        raise ValueError(f"{name}: cannot decode the GIF, it is truncated or corrupt ({err})") from None
    except (OSError, EOFError, SyntaxError) as err:
        raise ValueError(f"{name}: cannot decode the GIF, it is truncated or corrupt ({err})") from None
    mean = sum(durations) / len(durations) if durations else 0
    return _checked(frames, 1000.0 / mean if mean > 0 else DEFAULT_FPS, name, limits)


def _read_container(data: bytes, name: str, limits: ImageLimits) -> Clip:
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise ValueError(f"{name}: the file holds no video stream")
            stream = container.streams.video[0]
            _check_size((stream.codec_context.width, stream.codec_context.height), limits, name)
            if stream.frames and stream.frames > limits.max_frames:
                raise _too_many(name, stream.frames, limits)
            rate = stream.average_rate or stream.guessed_rate
            frames = []
            for frame in container.decode(stream):
                if len(frames) == limits.max_frames:
                    raise _too_many(name, None, limits)
                _check_size((frame.width, frame.height), limits, name)
                frames.append(frame.to_image())
    except av.FFmpegError as err:
        detail = getattr(err, "strerror", None) or str(err).splitlines()[0] or type(err).__name__
        raise ValueError(
            f"{name}: not a video FFmpeg can read, or truncated or corrupt ({detail}); give an MP4 or a GIF"
        ) from None
    return _checked(frames, float(rate) if rate else DEFAULT_FPS, name, limits)


def _read_folder(folder: Path, limits: ImageLimits) -> Clip:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: _natural(p.name))
    if len(files) > limits.max_frames:
        raise _too_many(str(folder), len(files), limits)
    return _checked([open_image(p, limits) for p in files], DEFAULT_FPS, str(folder), limits)


def read_video(video, limits: ImageLimits | None = None, fps: float | None = None) -> Clip:
    """A :class:`Clip` from a GIF, an MP4 (or another container FFmpeg reads), a folder of image files (sorted by
    name, numbers in order: ``frame_2`` before ``frame_10``) or a list of PIL images, within ``limits``.

    The frame rate is the file's (GIF: from the mean frame duration; 16, Wan's, where it states none); a folder
    or a list takes ``fps`` (default 16).

    Raises:
        ValueError: one line naming the video: not found, not a regular file, over a limit (bytes, pixels,
            frames), not a video, corrupt, no frames, fewer than 5 frames, frames of different sizes.
    """
    limits = limits or ImageLimits()
    if isinstance(video, Clip):
        return video
    if isinstance(video, list | tuple):
        return _checked(list(video), fps or DEFAULT_FPS, "video", limits)
    path = Path(video)
    if path.is_dir():
        clip = _read_folder(path, limits)
        return Clip(clip.frames, fps or clip.fps)
    return decode_video(read_image_file(path, limits), limits, str(path))


def decode_video(data: bytes, limits: ImageLimits | None = None, name: str = "video") -> Clip:
    """A :class:`Clip` from a video file's bytes (GIF, or a container FFmpeg reads), within ``limits``; ``name``
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


def save_video(frames: list[Image.Image], output: str | Path, fps: float, record: dict | None = None) -> None:
    """Write ``frames`` atomically as a GIF (Pillow, looping) or an MP4 (H.264, yuv420p, CRF 16) by the suffix,
    at ``fps`` frames per second (a GIF stores frame durations in 10 ms units); ``record`` (JSON) goes into the
    file's comment."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{output}: not a video file name; end it with {' or '.join(VIDEO_SUFFIXES)}")
    comment = "" if record is None else json.dumps(record, sort_keys=True, ensure_ascii=True)

    def write_gif(tmp: Path) -> None:
        duration = max(10, round(1000.0 / fps / 10) * 10)
        first, *rest = frames
        first.save(tmp, format="GIF", save_all=True, append_images=rest, duration=duration, loop=0, comment=comment)

    def write_mp4(tmp: Path) -> None:
        import av
        import numpy as np

        width, height = frames[0].size
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
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
            with av.open(str(path)) as container:
                text = container.metadata.get("comment", "")
        record = json.loads(text) if text else None
    except (OSError, ValueError, RecursionError, av.FFmpegError):
        return None
    return record if isinstance(record, dict) else None
