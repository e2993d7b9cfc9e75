"""Video families (Wan 2.1, Wan 2.2): one call per step to the expert that owns t, the reference loop, frames and
frame rate kept, GIF and MP4 in and out, bad videos refused in one line."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from reference_loops import reference_wan

from flowedit.cli import main
from flowedit.media.images import ImageLimits
from flowedit.media.video import Clip, fit_frames, read_video, save_video, video_record
from flowedit.models import load

FAST = dict(steps=6, n_max=5)


def frames(count=9, width=40, height=32, seed=0):
    """Smooth moving gradients (what H.264 keeps well) with a little noise; every frame differs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    clip = []
    for i in range(count):
        base = np.stack([x * 4 + i * 3, y * 5 + i * 2, np.full_like(x, 40 + 15 * i)], axis=-1)
        clip.append(Image.fromarray((base + rng.integers(0, 4, base.shape)).clip(0, 255).astype(np.uint8)))
    return clip


@pytest.fixture(scope="module", params=["wan", "wan22"])
def editor(request):
    return load(f"tiny-{request.param}")


def test_a_9_frame_clip_edits_with_one_call_per_step_on_the_expert_that_owns_t(editor):
    pipe, used = editor.pipe, []
    experts = [("transformer", pipe.transformer), ("transformer_2", pipe.transformer_2)]
    hooks = [m.register_forward_hook(lambda *a, n=n: used.append(n)) for n, m in experts if m is not None]
    try:
        settings = editor.settings(steps=8, n_max=7, n_avg=2)
        edited, result = editor.render(frames(), "a red car", "a blue bus", settings)
        again = editor.edit_latents(frames(), "a red car", "a blue bus", settings)
    finally:
        for hook in hooks:
            hook.remove()
    ts = editor.adapter.timesteps(8, result.source)[1:-1]  # the 7 steps' t
    assert result.model_calls == again.model_calls == len(used) // 2 == 7  # both branches, CFG and draws: 1 call
    owners = ["transformer" if editor.family.name == "wan" or t >= 0.875 else "transformer_2" for t in ts.tolist()]
    assert used[:7] == owners
    if editor.family.name == "wan22":  # the switch happens inside the edit: both experts work
        assert 0 < owners.count("transformer") < 7
    assert torch.equal(result.edited, again.edited) and torch.isfinite(result.edited).all()
    assert result.source.shape == (1, 4, 3, 8, 10)  # (B, C, (9 - 1) / 4 + 1, 32 / 4, 40 / 4)
    assert len(edited) == 9 and {f.size for f in edited} == {(40, 32)}


def test_each_wan_family_equals_the_reference_loop(editor):
    settings = editor.settings(steps=7, n_max=6, n_avg=2, seed=3)
    ours = editor.edit_latents(frames(), "a cat", "a photo of a dog", settings)
    clip = editor.load_video(frames())
    pixels = editor.pipe.video_processor.preprocess_video(clip.frames, height=32, width=40)
    guidance = (settings.src_guidance, settings.tar_guidance)
    ref = reference_wan(editor.pipe, pixels, "a cat", "a photo of a dog", 7, 6, 2, *guidance, 3)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


def test_the_default_start_is_seven_tenths_of_the_steps_at_t_0875_with_shift_3(editor):
    d = editor.defaults
    assert d.n_max / d.steps == pytest.approx(0.7)
    ts = editor.adapter.timesteps(d.steps, torch.zeros(1))
    assert float(ts[d.steps - d.n_max]) == pytest.approx(0.875, abs=5e-4)


@pytest.mark.parametrize(
    "family, shift, start, high_noise_steps",
    [("wan", 3.0, 0.875, None), ("wan", 5.0, 0.921, None), ("wan22", 12.0, 0.966, 14), ("wan22", 3.0, 0.8752, 1)],
)
def test_the_start_times_the_readme_states_for_wans_real_schedulers(family, shift, start, high_noise_steps):
    from diffusers import UniPCMultistepScheduler

    from flowedit.models import DEFAULTS

    d = DEFAULTS[family]
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)
    scheduler.set_timesteps(d.steps)
    ts = scheduler.sigmas[d.steps - d.n_max : d.steps].tolist()  # the t of each edit step
    assert ts[0] == pytest.approx(start, abs=5e-4) and d.n_max / d.steps == pytest.approx(0.7)
    if high_noise_steps is not None:  # Wan 2.2 A14B's boundary: 0.875
        assert sum(t >= 0.875 for t in ts) == high_noise_steps


def test_a_list_a_folder_a_gif_and_an_mp4_are_the_same_clip(tmp_path):
    clip = frames(10, 44, 36)
    save_video(clip, tmp_path / "a.gif", 10.0)
    save_video(clip, tmp_path / "a.mp4", 24.0)
    (tmp_path / "dir").mkdir()
    for i, frame in enumerate(clip):  # named so that text order would put frame_10 before frame_2
        frame.save(tmp_path / "dir" / f"frame_{i + 1}.png")
    editor = load("tiny-wan")
    with pytest.warns(UserWarning) as caught:
        loaded = editor.load_video(clip)
    messages = [str(w.message) for w in caught]
    assert "frame size 44x36 is not a multiple of 8: center-cropped to 40x32" in messages
    assert "10 frames is not 4k + 1 (the VAE's rule): kept the first 9, dropped the last 1" in messages
    assert len(loaded.frames) == 9 and loaded.size == (40, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = editor.load_video(tmp_path / "dir")
        gif, mp4 = editor.load_video(tmp_path / "a.gif"), editor.load_video(tmp_path / "a.mp4")
    for other in (folder, gif, mp4):
        assert len(other.frames) == 9 and other.size == (40, 32)
    # PNG frames are lossless and in numeric order; GIF (256 colours) and MP4 (H.264) are close
    assert [np.asarray(f).tolist() for f in folder.frames] == [np.asarray(f).tolist() for f in loaded.frames]
    assert gif.fps == 10.0 and mp4.fps == 24.0
    with warnings.catch_warnings():  # Editor.edit takes the path and returns the frames
        warnings.simplefilter("ignore")
        edited = editor.edit(str(tmp_path / "a.mp4"), "a", "b", **FAST)
    assert len(edited) == 9 and {f.size for f in edited} == {(40, 32)}
    error = np.abs(np.asarray(mp4.frames[4], float) - np.asarray(loaded.frames[4], float)).mean()
    assert error < 3  # H.264 at CRF 16, yuv420p: within a few of 256 levels on smooth frames


@pytest.mark.parametrize(
    "suffix_in, suffix_out, fps, kept",
    [(".gif", ".mp4", 10.0, 10.0), (".mp4", ".gif", 20.0, 20.0), (".mp4", ".gif", 24.0, 25.0)],  # GIF: 10 ms steps
)
def test_flowedit_edit_video_round_trips_gif_and_mp4_keeping_frames_size_and_rate(
    tmp_path, capsys, suffix_in, suffix_out, fps, kept
):
    source, out = tmp_path / f"in{suffix_in}", tmp_path / f"out{suffix_out}"
    save_video(frames(9), source, fps)
    argv = ["edit", "--model", "tiny-wan22", "--video", str(source), "--out", str(out)]
    assert main(argv + ["--source", "a cat", "--target", "a dog", "--steps", "6", "--n-max", "5"]) == 0
    assert f"wrote {out} (9 frames of 40x32 at {kept:g} fps" in capsys.readouterr().out
    clip = read_video(out)
    assert len(clip.frames) == 9 and clip.size == (40, 32) and clip.fps == kept
    record = video_record(out)
    assert record["model"] == "tiny-wan22" and record["frames"] == 9 and record["n_max"] == 5 and record["fps"] == kept
    assert record["model_calls"] == 5 and record["media"] == "video" and len(record["source_sha256"]) == 64


def test_a_gif_keeps_its_rate_to_its_10_ms_steps(tmp_path):
    save_video(frames(5), tmp_path / "a.gif", 24.0)  # 41.7 ms a frame is stored as 40 ms
    assert read_video(tmp_path / "a.gif").fps == 25.0


def _one_frame(path):
    frames(1)[0].save(path)


def _image_descriptors(data: bytes) -> list[int]:
    """Offsets of a GIF's image descriptors (0x2C blocks), found by walking its blocks."""
    flags, at, found = data[10], 13, []
    at += 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0  # the global colour table
    while data[at] != 0x3B:  # the trailer
        if data[at] == 0x21:  # an extension: label, then sub-blocks
            at += 2
        else:  # an image: descriptor, local colour table, LZW code size, then sub-blocks
            found.append(at)
            local = data[at + 9]
            at += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
        while data[at]:
            at += data[at] + 1
        at += 1
    return found


def _growing_gif(path):
    """A 16x16 GIF whose second frame is placed at (2000, 2000): Pillow enlarges the canvas to 2016x2016."""
    rng = np.random.default_rng(0)
    tiles = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(6)]
    tiles[0].save(path, save_all=True, append_images=tiles[1:], duration=100)
    data = bytearray(path.read_bytes())
    second = _image_descriptors(bytes(data))[1]
    data[second + 1 : second + 5] = (2000).to_bytes(2, "little") * 2  # its left and top
    path.write_bytes(bytes(data))


def _clip(path):
    save_video(frames(9), path, 16.0)


def _corrupt(path):
    save_video(frames(9), path, 16.0)
    path.write_bytes(path.read_bytes()[:300])


@pytest.mark.parametrize(
    "make, limits, options, message",
    [
        (lambda p: p.write_bytes(b""), {}, [], "the file is empty"),
        (lambda p: p.write_bytes(b"not a video at all" * 10), {}, [], "not a video file flowedit reads"),
        (_corrupt, {}, [], "cannot decode the video, it is truncated or corrupt"),
        (_one_frame, {}, [], "the video has 1 frame(s); a video edit needs at least 5"),
        (_clip, {"max_frames": 8}, ["--max-frames", "8"], "the video has 9 frames, over the limit of 8"),
        (_clip, {"max_pixels": 1000}, ["--max-pixels", "1000"], "frame is 40x32 = 1280 pixels, over the limit"),
        (_clip, {"max_bytes": 1048}, ["--max-file-size", "0.001"], "over the limit of 1048 bytes"),
        (
            _clip,
            {"max_video_pixels": 8000},
            ["--max-video-pixels", "8000"],
            "9 frames of 40x32, over the limit of 8000",
        ),
        (_growing_gif, {"max_pixels": 4096}, ["--max-pixels", "4096"], "over the limit of 4096 pixels"),
    ],
    ids=[
        "empty",
        "not-a-video",
        "corrupt",
        "one-frame",
        "too-many-frames",
        "too-many-pixels",
        "too-many-bytes",
        "too-large-in-all",
        "gif-frame-grows",
    ],
)
def test_a_bad_video_gets_one_line_before_the_model_loads(tmp_path, capsys, make, limits, options, message):
    source = tmp_path / ("in.gif" if make in (_one_frame, _growing_gif) else "in.mp4")
    make(source)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_video(source, ImageLimits(**limits))
    argv = ["edit", "--model", "tiny-wan", "--video", str(source), "--out", str(tmp_path / "out.mp4")]
    assert main(argv + ["--source", "a", "--target", "b", *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not (tmp_path / "out.mp4").exists()


def test_a_video_too_long_stops_decoding_at_the_limit_even_if_its_header_hides_the_count(tmp_path):
    save_video(frames(9), tmp_path / "a.gif", 16.0)  # a GIF's header states no frame count
    with pytest.raises(ValueError, match="more than 6 frames, over the limit of 6"):
        read_video(tmp_path / "a.gif", ImageLimits(max_frames=6))


def test_images_and_videos_go_to_their_own_families(tmp_path, capsys):
    save_video(frames(9), tmp_path / "in.gif", 16.0)
    frames(1)[0].save(tmp_path / "in.png")
    common = ["--source", "a", "--target", "b"]
    assert main(["edit", "--model", "tiny-wan", "--image", str(tmp_path / "in.png"), "--out", "x.png", *common]) == 2
    assert "tiny-wan edits videos: give the source with --video" in capsys.readouterr().err
    out = str(tmp_path / "x.mp4")
    assert main(["edit", "--model", "tiny-sd3", "--video", str(tmp_path / "in.gif"), "--out", out, *common]) == 2
    assert "tiny-sd3 edits images: give the source with --image" in capsys.readouterr().err
    assert main(["edit", "--model", "tiny-wan", "--video", str(tmp_path / "in.gif"), "--out", "x.png", *common]) == 2
    assert "not a video file name; end it with .gif, .mp4" in capsys.readouterr().err
    with pytest.raises(ValueError, match="a mask applies to image families; wan edits videos"):
        load("tiny-wan").edit(frames(), "a", "b", mask=frames(1)[0], **FAST)


def test_python_inputs_are_held_to_the_same_rules():
    with pytest.raises(ValueError, match="the video has 2 frame"):
        read_video(Clip(frames(2)))
    with pytest.raises(ValueError, match="the video has more than 8 frames, over the limit of 8"):
        read_video(frames(9), ImageLimits(max_frames=8))
    with pytest.raises(ValueError, match="a video as a list holds PIL images, not ndarray"):
        read_video([np.zeros((4, 4, 3))] * 5)
    with pytest.raises(ValueError, match="a video is a list of PIL images, a GIF, an MP4 or a folder"):
        load("tiny-wan").edit(frames(1)[0], "a", "b", **FAST)
    with pytest.raises(ValueError, match=r"read_video: fps must be a positive, finite .*, got nan \(float\)"):
        read_video(frames(5), fps=float("nan"))  # a rate that is no rate is refused, not replaced


def test_without_guidance_each_branch_is_one_row_and_still_one_call_per_step():
    editor, rows = load("tiny-wan"), []
    hook = editor.pipe.transformer.register_forward_hook(
        lambda module, args, kwargs, out: rows.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        settings = editor.settings(**FAST, n_avg=3, src_guidance=1.0, tar_guidance=1.0)
        result = editor.edit_latents(frames(), "a cat", "a dog", settings)
    finally:
        hook.remove()
    assert result.model_calls == 5 and rows == [2 * 3] * 5  # [source, target] x 3 draws, no negative rows


def test_fit_frames_keeps_4k_plus_1_frames():
    for count, kept in [(5, 5), (6, 5), (8, 5), (9, 9), (12, 9), (13, 13)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert len(fit_frames(Clip(frames(count))).frames) == kept


def test_a_batch_entry_may_name_a_video_its_outputs_are_mp4s_that_a_rerun_knows(tmp_path, capsys):
    save_video(frames(9), tmp_path / "car.gif", 10.0)
    batch = tmp_path / "edits.yaml"
    batch.write_text(
        "- input_video: car.gif\n  source_prompt: a red car\n  target_prompts: [a blue bus, a bike]\n"
        "  target_codes: [bus, bike]\n  steps: 6\n  n_max: 5\n"
    )
    run = ["run", str(batch), "--model", "tiny-wan", "--out-dir", str(tmp_path / "out")]
    assert main(run) == 0
    outputs = sorted((tmp_path / "out" / "car").iterdir())
    assert [p.name for p in outputs] == ["bike.mp4", "bus.mp4"]
    for output in outputs:
        clip = read_video(output)
        assert len(clip.frames) == 9 and clip.size == (40, 32) and clip.fps == 10.0
        assert video_record(output)["model_calls"] == 5
    capsys.readouterr()
    assert main(run) == 0 and "0 edited, 2 already done" in capsys.readouterr().out
    assert main(run + ["--seed", "3"]) == 2  # outputs made with another run seed: refused, not redone silently
    assert "2 of 2 outputs" in capsys.readouterr().err
    assert main(["run", str(batch), "--model", "tiny-sd3", "--out-dir", str(tmp_path / "other")]) == 2
    assert "entry 1: tiny-sd3 edits images; give the entry's input as input_img" in capsys.readouterr().err


@pytest.mark.parametrize(
    "entry, message",
    [
        ("input_img: a.png\n  input_video: a.gif", "keys input_img and input_video both name the input"),
        ("input_video: a.gif\n  mask: m.png", "key 'mask' applies to images; a video edit has no mask"),
    ],
)
def test_a_video_entry_is_checked_before_the_model_loads(tmp_path, capsys, entry, message):
    batch = tmp_path / "edits.yaml"
    batch.write_text(f"- {entry}\n  source_prompt: a\n  target_prompts: [b]\n  target_codes: [b]\n")
    assert main(["run", str(batch), "--model", "tiny-wan", "--out-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_a_video_sweeps_into_mp4_cells_and_a_sheet_of_middle_frames_and_resumes(tmp_path, capsys):
    from PIL import Image as PILImage

    save_video(frames(9), tmp_path / "in.gif", 10.0)
    argv = ["sweep", "--model", "tiny-wan", "--video", str(tmp_path / "in.gif"), "--source", "a", "--target", "b"]
    argv += ["--out-dir", str(tmp_path / "s"), "--n-max", "3,5", "--tar-guidance", "4", "--steps", "6"]
    assert main(argv) == 0
    assert "2 cells, 2 edited now, 0 kept" in capsys.readouterr().out
    cells = sorted((tmp_path / "s" / "cells").iterdir())
    assert [p.name for p in cells] == ["n_max-3_guidance-4.0_seed-42.mp4", "n_max-5_guidance-4.0_seed-42.mp4"]
    for cell in cells:
        assert len(read_video(cell).frames) == 9 and video_record(cell)["model_calls"] in (3, 5)
    with PILImage.open(tmp_path / "s" / "sheet.png") as sheet:
        assert sheet.size[0] > 0
    assert main(argv) == 0 and "2 cells, 0 edited now, 2 kept" in capsys.readouterr().out
    assert main(["sweep", "--model", "tiny-wan", "--image", "x.png", *argv[5:]]) == 2
    assert "tiny-wan edits videos: give the source with --video" in capsys.readouterr().err


@pytest.mark.parametrize(
    "suffix, container, codec",
    [
        (".mov", "mov", "mpeg4"),
        (".mkv", "matroska", "mpeg4"),
        (".webm", "webm", "libvpx-vp9"),
        (".avi", "avi", "mpeg4"),
    ],
)
def test_mov_mkv_webm_and_avi_are_read_too(tmp_path, suffix, container, codec):
    import av

    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = 40, 32, "yuv420p"
        for frame in frames(9):
            out.mux(stream.encode(av.VideoFrame.from_image(frame)))
        out.mux(stream.encode())
    clip = read_video(path)
    assert len(clip.frames) == 9 and clip.size == (40, 32) and clip.fps == 12.0


def test_wan22_ti2v_5b_layout_edits_as_wan_and_equals_its_pipelines_per_token_timesteps():
    from flowedit.models import Editor
    from flowedit.testing import tiny_wan_pipeline

    editor = Editor.from_pipeline(tiny_wan_pipeline(ti2v=True))
    assert editor.family.name == "wan" and editor.adapter.vae_factor == 16  # VAE 8 (4 x patchify 2) x patch 2
    settings = editor.settings(steps=7, n_max=6, n_avg=2, seed=3)
    ours = editor.edit_latents(frames(9, 48, 32), "a cat", "a photo of a dog", settings)
    assert ours.model_calls == 6 and ours.source.shape == (1, 4, 3, 4, 6)
    pixels = editor.pipe.video_processor.preprocess_video(editor.load_video(frames(9, 48, 32)).frames, 32, 48)
    guidance = (settings.src_guidance, settings.tar_guidance)
    ref = reference_wan(editor.pipe, pixels, "a cat", "a photo of a dog", 7, 6, 2, *guidance, 3)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)
