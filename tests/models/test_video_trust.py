"""Videos as they play and rates as they are: a container's display matrix applied (phone clips upright), frame
rates never invented (refused, or the default stated), the rate recorded is the rate written, and bad arguments of
``read_video`` / ``save_video`` named in one line."""

import math
import re
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from flowedit.cli import main
from flowedit.media.images import ImageLimits
from flowedit.media.video import Clip, decode_video, read_video, save_video, stored_fps
from flowedit.media.video_out import MAX_FPS, MIN_FPS

RNG = np.random.default_rng(7)
PATTERN = np.kron(RNG.integers(0, 256, (4, 5)), np.ones((8, 8))).astype(np.uint8)  # 32x40 gray blocks, asymmetric


def frames(count=5, size=(40, 32)):
    return [Image.new("RGB", size, (10 * i, 80, 160)) for i in range(count)]


def write_mp4(path, rate=12, degrees=None, hflip=False, count=5):
    """PATTERN (gray, so chroma is flat) as an H.264 MP4 at ``rate``; ``degrees`` (counterclockwise) and ``hflip``
    go into the stream's display matrix, as a phone records its orientation."""
    import av

    with av.open(str(path), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 40, 32, "yuv420p"
        stream.options = {"crf": "0"}  # lossless luma: what comes back is the pattern up to RGB <-> YUV rounding
        if degrees is not None:
            stream.set_display_rotation(degrees, hflip=hflip)
        rgb = np.repeat(PATTERN[..., None], 3, axis=2)
        for _ in range(count):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())


# What a player shows: the decoded picture turned counterclockwise by ``degrees``, then mirrored left-right.
@pytest.mark.parametrize("degrees", [0, 90, 180, -90])
@pytest.mark.parametrize("hflip", [False, True])
def test_a_display_matrix_is_applied_as_a_player_shows_it(tmp_path, degrees, hflip):
    write_mp4(tmp_path / "phone.mp4", degrees=degrees, hflip=hflip)
    clip = read_video(tmp_path / "phone.mp4")
    shown = np.rot90(PATTERN, degrees // 90)
    shown = np.fliplr(shown) if hflip else shown
    assert clip.size == (shown.shape[1], shown.shape[0])  # a quarter turn: 32x40, not 40x32
    for frame in clip.frames:
        got = np.asarray(frame).astype(int)
        assert np.abs(got - shown[..., None]).max() <= 3
    others = [np.rot90(PATTERN, k) for k in range(4)] + [np.fliplr(np.rot90(PATTERN, k)) for k in range(4)]
    wrong = [o for o in others if o.shape == shown.shape and not np.array_equal(o, shown)]
    assert all(np.abs(np.asarray(clip.frames[0])[..., 0].astype(int) - o).mean() > 20 for o in wrong)


def test_a_phone_clip_read_from_its_bytes_is_upright_too(tmp_path):
    write_mp4(tmp_path / "phone.mp4", degrees=-90)  # a portrait phone clip: a quarter turn clockwise
    clip = decode_video((tmp_path / "phone.mp4").read_bytes(), name="phone.mp4")  # how batch runs read it
    assert clip.size == (32, 40)
    assert np.abs(np.asarray(clip.frames[0])[..., 0].astype(int) - np.rot90(PATTERN, -1)).max() <= 3


def test_a_display_matrix_that_is_not_a_quarter_turn_is_refused(tmp_path):
    write_mp4(tmp_path / "tilted.mp4", degrees=45)
    with pytest.raises(ValueError, match=r"tilted.mp4: the video is shown turned by 45 degrees or skewed .*upright$"):
        read_video(tmp_path / "tilted.mp4")


@pytest.mark.parametrize(
    "suffix, fps, kept",
    [
        (".mp4", MIN_FPS, 1 / 1001),
        (".mp4", 0.0015, 1 / 667),
        (".mp4", 30000 / 1001, 30000 / 1001),
        (".mp4", MAX_FPS, 1e6),
        (".gif", 100 / 65535, 1000 / 655350),  # the longest frame time a GIF holds
        (".gif", 24, 25.0),
        (".gif", 150, 100.0),  # 6.7 ms is 10 ms in 10 ms steps
    ],
)
def test_the_rate_recorded_is_the_rate_written(tmp_path, suffix, fps, kept):
    out = tmp_path / f"a{suffix}"
    save_video(frames(), out, fps)
    assert stored_fps(out, fps) == pytest.approx(kept, rel=1e-12)
    assert read_video(out).fps == stored_fps(out, fps)


@given(fps=st.floats(min_value=MIN_FPS, max_value=MAX_FPS) | st.floats(min_value=1, max_value=120))
@example(fps=1 / 1001)
@example(fps=100 / 65535)
def test_any_rate_written_is_read_back_as_the_rate_stored(tmp_path_factory, fps):
    folder, small = tmp_path_factory.mktemp("written"), frames(5, (8, 8))
    for suffix in (".mp4", ".gif"):
        out = folder / f"a{suffix}"
        if suffix == ".gif" and not 100 / 65535.5 < fps < 200:
            continue  # beyond a GIF's frame times: the test below
        save_video(small, out, fps)
        assert read_video(out).fps == stored_fps(out, fps)


@given(fps=st.floats(allow_nan=False, allow_infinity=False, min_value=1e-300, max_value=1e300))
@example(fps=0.0004)  # slower than one frame per 1001 s: written at 24 fps and recorded as 0, once
@example(fps=0.001)  # a GIF frame of 1000 s: an OverflowError traceback, once
@example(fps=250.0)
def test_a_rate_a_format_cannot_hold_is_one_line_naming_the_rate_and_the_range(tmp_path_factory, fps):
    folder = tmp_path_factory.mktemp("rates")
    for suffix in (".mp4", ".gif"):
        out = folder / f"a{suffix}"
        try:
            kept = stored_fps(out, fps)
        except ValueError as err:
            message = str(err)
            assert "\n" not in message and f"cannot hold {fps:g} fps" in message
            assert "1/1001 to 1000000 fps" in message
            with pytest.raises(ValueError, match=re.escape(f"cannot hold {fps:g} fps")):
                save_video(frames(), out, fps)
            assert not out.exists()
        else:
            if suffix == ".mp4":
                assert MIN_FPS <= fps <= MAX_FPS and abs(kept - fps) <= fps / 1000  # the nearest num/den
                assert float(Fraction(kept).limit_denominator(1001)) == kept
            else:
                assert 10 <= 1000 / kept <= 655350 and abs(1000 / kept - 1000 / fps) <= 5 + 1e-9


def test_a_source_slower_than_any_output_is_refused_before_the_model_loads(tmp_path, capsys):
    write_mp4(tmp_path / "slow.mp4", rate=Fraction(1, 2000))  # one frame per 2000 s
    with pytest.raises(ValueError, match=r"the video's frame rate is 0.0005 fps, outside the 1/1001 to 1000000"):
        read_video(tmp_path / "slow.mp4")
    argv = ["edit", "--model", "tiny-wan", "--video", str(tmp_path / "slow.mp4"), "--out", str(tmp_path / "o.mp4")]
    assert main(argv + ["--source", "a", "--target", "b"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0.0005 fps" in err[0] and not (tmp_path / "o.mp4").exists()


def test_a_gif_from_a_slow_source_is_one_line_not_an_overflow(tmp_path, capsys):
    save_video(frames(), tmp_path / "slow.mp4", 0.0012)  # an MP4 holds it (1/833 fps), a GIF does not
    argv = ["edit", "--model", "tiny-wan", "--video", str(tmp_path / "slow.mp4"), "--out", str(tmp_path / "o.gif")]
    assert main(argv + ["--source", "a", "--target", "b", "--steps", "2", "--n-max", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "OverflowError" not in err
    assert "a GIF cannot hold 0.00120048 fps: its frame times are 10 ms to 655.35 s" in err.strip().splitlines()[-1]
    assert not (tmp_path / "o.gif").exists()


@pytest.mark.parametrize("fps", [float("nan"), -16.0, 0, float("inf"), "24", True, [24]])
def test_a_rate_that_is_no_rate_is_refused_naming_fps(tmp_path, fps):
    message = re.escape(
        f"fps must be a positive, finite number of frames per second, got {fps!r} ({type(fps).__name__})"
    )
    with pytest.raises(ValueError, match=f"^read_video: {message}$"):
        read_video(frames(), fps=fps)
    with pytest.raises(ValueError, match=f"^save_video: {message}$"):
        save_video(frames(), tmp_path / "a.mp4", fps)
    with pytest.raises(ValueError, match=f"^Clip: {message}$"):
        Clip(frames(), fps)
    assert not (tmp_path / "a.mp4").exists()
    with pytest.raises(ValueError, match=r"^read_video: fps must be a frame rate of 1/1001 to 1000000 fps"):
        read_video(frames(), fps=1e-5)


def test_a_source_without_a_rate_states_the_default_or_takes_the_one_given(tmp_path):
    frames()[0].save(tmp_path / "still.gif", save_all=True, append_images=frames()[1:])  # no frame durations
    (tmp_path / "dir").mkdir()
    for i, frame in enumerate(frames()):
        frame.save(tmp_path / "dir" / f"{i}.png")
    for source, what in [(frames(), "a list of frames"), (tmp_path / "dir", "a folder of frames")]:
        with pytest.warns(UserWarning, match=f"{what} states no frame rate, so 16 fps \\(Wan's rate\\) is assumed"):
            assert read_video(source).fps == 16.0
    with pytest.warns(UserWarning, match="the GIF states no frame durations, so 16 fps"):
        assert read_video(tmp_path / "still.gif").fps == 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rate given, or stated by the source: nothing to say
        assert read_video(frames(), fps=12).fps == read_video(tmp_path / "still.gif", fps=12).fps == 12.0
        assert read_video(Clip(frames(), 10)).fps == read_video(tmp_path / "dir", fps=np.float32(10)).fps == 10.0


@pytest.mark.parametrize(
    "frames_, output, fps, record, message",
    [
        ([], "a.mp4", 16, None, "save_video: frames must be a non-empty list of PIL images of one size"),
        ([], "a.mp4", 16, None, "got an empty list"),
        (np.zeros((5, 8, 8, 3)), "a.mp4", 16, None, "got ndarray array"),
        ("frames", "a.gif", 16, None, "got str 'frames'"),
        ([np.zeros((8, 8, 3), np.uint8)] * 5, "a.mp4", 16, None, "got a ndarray as frame 0"),
        (
            frames(3) + frames(2, (20, 16)),
            "a.mp4",
            16,
            None,
            "save_video: frames must be of one size, got 20x16, 40x32",
        ),
        (frames(5, (1, 8)), "a.mp4", 16, None, "save_video: an MP4's frames are at least 2x2 pixels, got 1x8"),
        (frames(), 5, 16, None, "save_video: output must be a file name ending in .gif or .mp4, got 5"),
        (frames(), "a.png", 16, None, "a.png: not a video file name; end it with .gif or .mp4"),
        (frames(), "a.mp4", 16, [1], r"save_video: record must be a dict \(JSON\) or None, got \[1\]"),
    ],
)
def test_save_video_names_a_bad_argument_before_writing(tmp_path, frames_, output, fps, record, message):
    out = tmp_path / output if isinstance(output, str) else output
    with pytest.raises(ValueError, match=message):
        save_video(frames_, out, fps, record)
    assert list(tmp_path.iterdir()) == []


def test_save_video_takes_what_is_clearly_meant(tmp_path):
    pixels = np.stack([np.asarray(f) for f in frames()])  # uint8 (5, 32, 40, 3)
    save_video(pixels, tmp_path / "a.mp4", np.int64(12))
    save_video(Clip(frames(), 10.0), tmp_path / "b.gif", Fraction(10))
    save_video(tuple(frames()), tmp_path / "c.mp4", np.float64(30000 / 1001))  # NTSC's rate
    assert read_video(tmp_path / "a.mp4").fps == 12.0 and read_video(tmp_path / "b.gif").fps == 10.0
    assert read_video(tmp_path / "c.mp4").fps == stored_fps("c.mp4", 30000 / 1001) == 30000 / 1001
    assert stored_fps("c.mp4", 29.97) == 29.97  # 2997/100: nearer to 29.97 than 30000/1001 is
    assert not math.isclose(30000 / 1001, 29.97, rel_tol=1e-6)


def test_read_video_names_bad_limits():
    with pytest.raises(
        ValueError, match=r"^read_video: limits must be an ImageLimits or None, got \{'max_frames': 9\}"
    ):
        read_video(frames(), {"max_frames": 9})
    assert len(read_video(frames(), ImageLimits(max_frames=9), fps=16).frames) == 5
