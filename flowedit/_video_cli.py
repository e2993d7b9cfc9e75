"""``flowedit edit --video IN --out OUT``: one video edit with a video family (Wan), GIF or MP4 in and out.

The source is read and checked (size, frame count, frame rate) before the model loads; the output keeps the frame
rate and carries the edit's record in its comment, and is written whole or not at all.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

__all__ = ["edit_video", "media_of"]


def media_of(model: str, editor=None) -> str | None:
    """``"image"`` or ``"video"``: what the model edits (from the loaded ``editor``, else from its name; None if
    only loading it will tell)."""
    from .models._families import family_of_name

    family = editor.family if editor is not None else family_of_name(model)
    return None if family is None else family.media


def check_media(model: str, video: bool, editor=None) -> None:
    """One line when ``--image`` goes to a video model or ``--video`` to an image model."""
    media = media_of(model, editor)
    if media == "video" and not video:
        raise ValueError(f"{model} edits videos: give the source with --video (a GIF, an MP4 or a folder of frames)")
    if media == "image" and video:
        raise ValueError(f"{model} edits images: give the source with --image, or use a video model (tiny-wan, Wan)")


def edit_video(args, check_output, limits, device, dtype, load) -> int:
    """The video branch of ``flowedit edit``; the caller has checked the settings against the family's defaults."""
    from tqdm import tqdm

    from .models._video import VIDEO_SUFFIXES, read_video, save_video, stored_fps

    source, out = Path(args.video), Path(args.out)
    check_output(out, source, VIDEO_SUFFIXES)
    if args.mask is not None:
        raise ValueError("--mask applies to image families; a video edit has no mask")
    clip = read_video(source, limits)  # bounded and checked before the model loads
    editor = load()
    check_media(args.model, True, editor)
    settings = editor.defaults.replace(**args.options, seed=args.seed)
    with tqdm(total=settings.integration_steps, desc=settings.method, unit="step", leave=False) as bar:
        frames, result = editor.render(clip, args.source, args.target, settings, progress=bar)
    fps = stored_fps(out, clip.fps)  # what the file keeps (a GIF: 10 ms steps)
    record = {"model": args.model, "dtype": str(dtype).removeprefix("torch."), "video": str(source)}
    record |= {"frames": len(frames), "fps": fps, "source_prompt": args.source, "target_prompt": args.target}
    record |= {**asdict(settings), **result.outcome}
    save_video(frames, out, clip.fps, record)
    width, height = frames[0].size
    print(
        f"wrote {out} ({len(frames)} frames of {width}x{height} at {fps:g} fps; {settings.method}, "
        f"{settings.steps} steps, n_max {settings.n_max}, seed {settings.seed}, {result.model_calls} model calls, "
        f"{result.seconds:.1f} s, latent MSE {result.latent_mse:.4f})"
    )
    return 0
