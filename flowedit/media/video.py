"""Videos in and out: GIF, MP4 (and what else FFmpeg reads) or a folder of frames, bounded before decoding.

A video file is untrusted input, read like an image (:mod:`flowedit.media.images`): regular files only, at most
``ImageLimits.max_bytes`` bytes read into memory, only the containers flowedit knows opened (by their signature),
each frame's size checked against ``max_pixels`` before it is kept, the frame count against ``max_frames`` and the
pixels of the whole clip against ``max_video_pixels``, from the header where it states them and while decoding.
Every failure is one ``ValueError`` line that names the file and the fix. GIFs are read and written with Pillow;
other containers with PyAV, whose wheels ship their own FFmpeg (MP4 is written as H.264, yuv420p, CRF 16: near
lossless, playable everywhere).
A container's display matrix (the rotation a phone records) is applied while reading, as EXIF orientation is
applied to images: quarter turns and mirrors; any other angle is refused.

Frame rates are never invented: a rate is the source's own, or the ``fps`` given, or, where neither states one,
16 (Wan's) with a warning that says so. A rate no output can hold (outside 1/1001 .. 10**6 fps) is refused when
read. Writing (:func:`save_video`, :func:`stored_fps`: the rates a GIF and an MP4 hold) is in
:mod:`flowedit.media.video_out`; its names are re-exported here.

Wan's causal VAE takes ``F = 4k + 1`` frames (the first alone, then groups of four): :func:`fit_frames` keeps the
longest such prefix and warns about the frames it drops. A clip of fewer than 5 frames is refused.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .._text import short
from .images import (
    IMAGE_SUFFIXES,
    PILLOW_GLOBALS,
    ImageLimits,
    check_size,
    file_kind,
    one_line,
    open_image,
    read_image_file,
)
from .modes import to_rgb
from .video_out import (
    DEFAULT_FPS,
    MAX_FPS,
    MIN_FPS,
    RATES,
    VIDEO_SUFFIXES,
    Clip,
    positive_fps,
    save_video,
    stored_fps,
    video_record,
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

MIN_FRAMES = 5  # the shortest clip with a second latent frame (4k + 1, k = 1)


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
        check_size(size, self.limits, self.name, "frame")
        if count > self.limits.max_frames:
            raise _too_many(self.name, count, self.limits)
        if count * size[0] * size[1] > self.limits.max_video_pixels:
            raise self._too_large(f"{count} frames of {size[0]}x{size[1]}")

    def add(self, frame) -> None:
        if len(self.frames) == self.limits.max_frames:
            raise _too_many(self.name, None, self.limits)
        check_size(frame.size, self.limits, self.name, "frame")
        self.pixels += frame.size[0] * frame.size[1]
        if self.pixels > self.limits.max_video_pixels:
            raise self._too_large(f"more than {len(self.frames)} frames of up to {frame.size[0]}x{frame.size[1]}")
        self.frames.append(frame)

    def _too_large(self, what: str) -> ValueError:
        return ValueError(
            f"{self.name}: the video has {what}, over the limit of {self.limits.max_video_pixels} pixels in all; "
            f"cut it shorter or smaller, or raise it with --max-video-pixels (Python: ImageLimits(max_video_pixels=...))"
        )

    def clip(self, stated: float | None, given: float | None, missing: str) -> Clip:
        """The frames as a :class:`Clip` at the rate :func:`_rate` takes; ``missing`` says what the source lacks."""
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
        return Clip([to_rgb(frame) for frame in frames], _rate(name, stated, given, missing))


def _given_fps(value, where: str) -> float | None:
    """The ``fps`` a caller gives for a source that states none: None, or a rate flowedit can write."""
    if value is None:
        return None
    fps = positive_fps(value, where)
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"{where}: fps must be a frame rate of {RATES} (what flowedit writes), got {fps:g}")
    return fps


def _rate(name: str, stated: float | None, given: float | None, missing: str) -> float:
    """The clip's rate: the source's ``stated`` rate, else the caller's ``given`` one, else :data:`DEFAULT_FPS` with
    a warning (``missing`` says what the source lacks). A stated rate that no output holds is refused."""
    if stated is not None and math.isfinite(stated) and stated > 0:
        if not MIN_FPS <= stated <= MAX_FPS:
            raise ValueError(
                f"{name}: the video's frame rate is {stated:g} fps, outside the {RATES} that flowedit writes; "
                f"re-time the video"
            )
        return float(stated)
    if given is not None:
        return given
    warnings.warn(
        f"{name}: {missing}, so {DEFAULT_FPS:g} fps (Wan's rate) is assumed (Python: pass fps=...)", stacklevel=3
    )
    return DEFAULT_FPS


def _too_many(name: str, count: int | None, limits: ImageLimits) -> ValueError:
    count = f"more than {limits.max_frames}" if count is None else count
    return ValueError(
        f"{name}: the video has {count} frames, over the limit of {limits.max_frames}; cut it shorter or raise "
        f"the limit with --max-frames (Python: ImageLimits(max_frames=...))"
    )


def _read_gif(data: bytes, name: str, limits: ImageLimits, fps: float | None) -> Clip:
    """Every frame's size is checked before it is kept; Pillow's own bomb check runs with our limit (a later frame
    may enlarge the canvas), under the lock that guards Pillow's global setting."""
    from PIL import Image, ImageSequence

    gathered, durations = _Frames(name, limits), []
    corrupt = f"{name}: cannot decode the GIF, it is truncated or corrupt"
    with PILLOW_GLOBALS, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = limits.max_pixels
            with Image.open(io.BytesIO(data)) as gif:
                check_size(gif.size, limits, name, "frame")
                for frame in ImageSequence.Iterator(gif):
                    check_size(frame.size, limits, name, "frame")
                    durations.append(frame.info.get("duration") or 0)
                    gathered.add(to_rgb(frame.convert("RGBA") if frame.mode == "P" else frame.copy()))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ValueError(
                f"{name}: a frame is over the limit of {limits.max_pixels} pixels ({one_line(err)}); raise it with "
                f"--max-pixels (Python: ImageLimits(max_pixels=...))"
            ) from None
        except ValueError as err:
            if str(err).startswith(name):
                raise
            raise ValueError(f"{corrupt} ({one_line(err)})") from None
        except (OSError, EOFError, SyntaxError, IndexError, struct.error) as err:  # IndexError: a GIF cut short
            raise ValueError(f"{corrupt} ({one_line(err)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    timed = [d for d in durations if d > 0]  # frames without a duration do not speed the clip up
    stated = 1000.0 * len(timed) / sum(timed) if timed else None
    return gathered.clip(stated, fps, "the GIF states no frame durations")


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


def _upright(frame, name: str) -> Image.Image:
    """The decoded ``frame`` as PIL RGB, turned as its display matrix says (FFmpeg's layout, 16.16 fixed point).

    The matrix maps a decoded pixel ``(x, y)`` to ``(a x + c y, b x + d y)`` on screen (plus a shift), with
    ``a, b, c, d = m[0], m[1], m[3], m[4]``: ``b = c = 0`` mirrors where ``a`` or ``d`` is negative; ``a = d = 0``
    transposes, then mirrors where ``c`` (across) or ``b`` (down) is negative. A phone's portrait clip stores
    ``(0, 1, -1, 0)``: a quarter turn clockwise. Other matrices (turns by other angles, shears) are refused.
    """
    from PIL import Image

    image = frame.to_image()
    side = frame.side_data.get("DISPLAYMATRIX")
    if side is None:
        return image
    m = struct.unpack("=9i", bytes(side))
    a, b, c, d = m[0], m[1], m[3], m[4]
    if b == c == 0 and a and d:
        swap, across, down = False, a < 0, d < 0
    elif a == d == 0 and b and c:
        swap, across, down = True, c < 0, b < 0
    else:
        raise ValueError(
            f"{name}: the video is shown turned by {-math.degrees(math.atan2(b, a)):.4g} degrees or skewed (its "
            f"display matrix); flowedit applies quarter turns and mirrors only: re-encode it upright"
        )
    turn = {
        (False, True, False): Image.Transpose.FLIP_LEFT_RIGHT,
        (False, False, True): Image.Transpose.FLIP_TOP_BOTTOM,
        (False, True, True): Image.Transpose.ROTATE_180,
        (True, False, False): Image.Transpose.TRANSPOSE,
        (True, True, False): Image.Transpose.ROTATE_270,  # PIL turns counterclockwise: a quarter turn clockwise
        (True, False, True): Image.Transpose.ROTATE_90,
        (True, True, True): Image.Transpose.TRANSVERSE,
    }.get((swap, across, down))
    return image if turn is None else image.transpose(turn)


def _read_container(data: bytes, name: str, limits: ImageLimits, fps: float | None) -> Clip:
    import av

    demuxer = _container_format(data)
    if demuxer is None:
        raise ValueError(
            f"{name}: not a video file flowedit reads ({file_kind(data)}); give a GIF, MP4, MOV, "
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
                check_size((frame.width, frame.height), limits, name, "frame")  # before converting it
                gathered.add(_upright(frame, name))
    except av.FFmpegError as err:
        detail = getattr(err, "strerror", None) or one_line(err) or type(err).__name__
        raise ValueError(f"{name}: cannot decode the video, it is truncated or corrupt ({detail})") from None
    return gathered.clip(float(rate) if rate else None, fps, "the video stream states no frame rate")


def _read_folder(folder: Path, limits: ImageLimits, fps: float | None) -> Clip:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: _natural(p.name))
    if len(files) > limits.max_frames:
        raise _too_many(str(folder), len(files), limits)
    gathered = _Frames(str(folder), limits)
    for path in files:
        gathered.add(open_image(path, limits))
    return gathered.clip(None, fps, "a folder of frames states no frame rate")


def read_video(video, limits: ImageLimits | None = None, fps: float | None = None) -> Clip:
    """A :class:`Clip` from a GIF, an MP4 (or a MOV, MKV, WebM, AVI), a folder of image files (sorted by name,
    numbers in order: ``frame_2`` before ``frame_10``), a list of PIL images or a :class:`Clip`, within ``limits``.

    The frame rate is the source's: a file's (GIF: from the frame durations) or a :class:`Clip`'s. Where the
    source states none (a folder, a list, a GIF without durations) it is ``fps``, else 16 (Wan's) with a warning.
    A container's display matrix is applied (a phone's portrait clip comes out upright, its size turned).

    Raises:
        ValueError: one line naming the video: not found, not a regular file, over a limit (bytes, pixels of a
            frame or of the whole clip, frames), not a video, corrupt, no frames, fewer than 5 frames, frames of
            different sizes, a display matrix that is not a quarter turn or mirror, a frame rate outside
            1/1001 .. 10**6 fps; or naming the argument: ``video``, ``limits`` or ``fps`` of a wrong kind.
    """
    limits = _check_limits(limits, "read_video")
    fps = _given_fps(fps, "read_video")
    stated = None
    if isinstance(video, Clip):
        video, stated = video.frames, video.fps
    if isinstance(video, list | tuple):
        gathered = _Frames("video", limits)
        for frame in video:
            if not hasattr(frame, "size") or not hasattr(frame, "mode"):
                raise ValueError(f"a video as a list holds PIL images, not {type(frame).__name__}")
            gathered.add(frame)
        return gathered.clip(stated, fps, "a list of frames states no frame rate")
    if not isinstance(video, str | os.PathLike):
        raise ValueError(
            f"a video is a list of PIL images, a GIF, an MP4 or a folder of frames, not a {type(video).__name__}"
        )
    path = Path(video)
    if path.is_dir():
        return _read_folder(path, limits, fps)
    return decode_video(read_image_file(path, limits, "video"), limits, str(path), fps=fps)


def _check_limits(limits, where: str) -> ImageLimits:
    if limits is None:
        return ImageLimits()
    if not isinstance(limits, ImageLimits):
        raise ValueError(f"{where}: limits must be an ImageLimits or None, got {short(limits)}")
    return limits


def decode_video(data: bytes, limits: ImageLimits | None = None, name: str = "video", *, fps=None) -> Clip:
    """A :class:`Clip` from a video file's bytes (GIF, MP4, MOV, MKV, WebM, AVI), within ``limits``; ``name``
    labels the messages; ``fps`` is the rate where the file states none (as :func:`read_video`)."""
    limits = _check_limits(limits, "decode_video")
    fps = _given_fps(fps, "decode_video")
    if not data:
        raise ValueError(f"{name}: the file is empty; give a GIF, an MP4 or a folder of images")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _read_gif(data, name, limits, fps)
    return _read_container(data, name, limits, fps)


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
