"""What every command needs, derived once from its options and checked before any model loads."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["Context", "check_output", "check_prompts", "mask_of"]


@dataclass
class Context:
    """A command's model, limits, device, dtype and settings options; ``family`` is the one the model's name
    announces (None when only loading it will tell)."""

    args: argparse.Namespace
    limits: Any  # ImageLimits
    family: Any  # Family | None
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    options: dict[str, Any]  # EditSettings overrides given as options (None: the family's default)

    @classmethod
    def of(cls, args: argparse.Namespace) -> Context:
        """The context of ``args``: the limits first (they fail at once), then the family, device and dtype."""
        import torch

        from ..media.images import ImageLimits
        from ..models import EditSettings
        from ..models._editor import default_dtype, resolve_device
        from ..models._families import family_of_name
        from ..runs.batch import process_shard

        if not getattr(args, "out_dir", "x"):
            raise ValueError("--out-dir is empty; name the folder for the outputs")
        limits = ImageLimits.from_options(**{f.name: getattr(args, f.name) for f in fields(ImageLimits)})
        device = resolve_device(args.device)
        if device.type == "cuda" and device.index is None:  # one GPU per process under a launcher
            device = resolve_device(f"cuda:{process_shard()[2]}")
        dtype = getattr(torch, args.dtype) if args.dtype else default_dtype(device)
        options = {f.name: getattr(args, f.name, None) for f in fields(EditSettings) if f.name != "seed"}
        return cls(args, limits, family_of_name(args.model), device, dtype, options)

    @property
    def model(self) -> str:
        return self.args.model

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def defaults(self):
        """The family's default settings, or None before the model is loaded if its name does not tell."""
        return None if self.family is None else self.family.defaults

    @property
    def media(self) -> str | None:
        return None if self.family is None else self.family.media

    def check_media(self, video: bool, editor=None) -> None:
        """One line when ``--image`` goes to a video model or ``--video`` to an image model."""
        media = editor.family.media if editor is not None else self.media
        if media == "video" and not video:
            raise ValueError(
                f"{self.model} edits videos: give the source with --video (a GIF, an MP4 or a folder of frames)"
            )
        if media == "image" and video:
            raise ValueError(
                f"{self.model} edits images: give the source with --image, or use a video model (tiny-wan, Wan)"
            )

    def load(self, video: bool | None = None):
        """The model as an :class:`~flowedit.models.Editor` reading within the limits; with ``video`` given, the
        media the loaded model edits is checked against it."""
        from ..models import load

        editor = load(self.model, device=self.device, dtype=self.dtype, offload=self.args.offload)
        editor.limits = self.limits
        if video is not None:
            self.check_media(video, editor)
        return editor


def check_output(out: Path, source: Path, suffixes: tuple[str, ...]) -> None:
    """``--out`` names a new or existing file of one of ``suffixes`` in a folder that exists and can be written,
    and is not the source; else one line (found now, not after the edit)."""
    kind = "video" if ".mp4" in suffixes else "image"
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as {out / ('edit' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        raise ValueError(
            f"--out {out}: not {'a' if kind == 'video' else 'an'} {kind} file name; end it with {', '.join(suffixes)}"
        )
    if os.path.realpath(out) == os.path.realpath(source):
        raise ValueError(f"--out {out} is the source {kind}; write the edit to another file")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"--out {out}: the folder {folder} does not exist; create it first")
    try:  # can a file be made there?
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write in {folder} ({err.strerror})") from None


def check_prompts(args: argparse.Namespace) -> None:
    """``--source`` and ``--target`` as :func:`~flowedit.models.check_prompt` wants them, named as options."""
    from ..models._arguments import check_prompt

    check_prompt(args.source, "--source")
    check_prompt(args.target, "--target")


def mask_of(args: argparse.Namespace, limits):
    """The ``--mask`` as a :class:`~flowedit.media.Source` (mode "L", alpha ignored), read within the limits and
    not all black, with ``--feather`` (finite, >= 0, and only with a mask); None without a mask."""
    from ..media.masks import check_feather
    from ..media.source import read_mask

    feather = check_feather(args.feather, "--feather")
    if args.mask is None:
        if feather:
            raise ValueError(f"--feather {feather:g} softens a mask's edge, and no --mask is given; give --mask too")
        return None
    return read_mask(Path(args.mask), limits)
