"""One edit request and the one path from it to a file: every command (``flowedit edit``, ``run``, ``sweep``) and
:func:`flowedit.runs.sweeps` go media -> latents -> integrator -> decode -> atomic save -> one record through
:func:`edit_to_file`.

A request is everything that decides an output's pixels, and nothing else (no paths, no timings): the model as
named and its dtype, the source's fingerprint (:func:`flowedit.media.source.fingerprint`), the prompts, every
:class:`~flowedit.models.EditSettings` field and the local edit (the mask's fingerprint and feather). Its
``request_id`` is a hash of those fields; an output whose embedded record carries the same id is that edit.

Every record has one schema. The record inside an output file is ``{"request_id", <request fields>,
<outcome>}``; a line of ``results.jsonl`` adds ``status``, ``output``, ``source`` and ``mask`` (the paths as given,
or null for pictures in memory), ``seconds`` and, for batch runs, the entry (``code``, ``where``, ``run_seed``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._text import dumps_strict
from ..media.source import Source, save_output
from ..models._settings import STRENGTHS, EditSettings, check_local_edit
from .locks import uninterrupted
from .records import append_record

__all__ = ["EditRequest", "check_output_name", "edit_to_file", "request_id"]


def request_id(fields: dict) -> str:
    """A short hash of a request's fields (canonical strict JSON, keys sorted)."""
    return hashlib.sha256(dumps_strict(dict(sorted(fields.items()))).encode()).hexdigest()[:16]


def check_output_name(output: Path, media: str) -> None:
    """An output of ``media`` needs a file name whose suffix names a format flowedit writes it in."""
    from ..media.images import IMAGE_SUFFIXES
    from ..media.video import VIDEO_SUFFIXES

    suffixes = VIDEO_SUFFIXES if media == "video" else IMAGE_SUFFIXES
    if output.suffix.lower() not in suffixes:
        raise ValueError(
            f"{output}: not {'a video' if media == 'video' else 'an image'} file name; end it with {', '.join(suffixes)}"
        )


@dataclass(frozen=True)
class EditRequest:
    """What decides one edit's output (see the module docstring); build with :meth:`of`."""

    model: str  # as named: a hub id, a local directory or tiny-<family>
    dtype: str  # "float32", "bfloat16", "float16"
    media: str  # "image" or "video"
    source_sha256: str
    source_prompt: str
    target_prompt: str
    settings: EditSettings
    mask_sha256: str | None = None
    feather: float = 0.0

    @classmethod
    def of(
        cls,
        model: str,
        dtype: str,
        source: Source,
        source_prompt: str,
        target_prompt: str,
        settings: EditSettings,
        mask: Source | None = None,
        feather: float = 0.0,
    ) -> EditRequest:
        """The request of editing ``source`` (and ``mask``) with ``settings``; the local-edit rule is checked."""
        feather = check_local_edit(source.media, settings.method, mask is not None, feather)
        mask_sha256 = None if mask is None else mask.sha256
        return cls(
            model, dtype, source.media, source.sha256, source_prompt, target_prompt, settings, mask_sha256, feather
        )

    @property
    def fields(self) -> dict[str, Any]:
        """The request as flat record fields (the settings' fields inline; the method's strengths as it ran them, an
        unset one at its official default, and no other method's)."""
        fields = {"model": self.model, "dtype": self.dtype, "media": self.media, "source_sha256": self.source_sha256}
        settings = {k: v for k, v in asdict(self.settings).items() if k not in STRENGTHS} | self.settings.strengths
        fields |= {"source_prompt": self.source_prompt, "target_prompt": self.target_prompt, **settings}
        return fields | {"mask_sha256": self.mask_sha256, "feather": self.feather}

    @property
    def id(self) -> str:
        return request_id(self.fields)

    def record(self, outcome: dict[str, Any]) -> dict[str, Any]:
        """The record an output carries: the id, the request's fields, then what the edit measured."""
        return {"request_id": self.id, **self.fields, **outcome}


def edit_to_file(
    editor,
    request: EditRequest,
    source: Source,
    output: str | Path,
    *,
    mask: Source | None = None,
    results: Path | None = None,
    origin: dict[str, Any] | None = None,
    annotations: dict[str, Any] | None = None,
    progress: Any = True,
    desc: str | None = None,
):
    """Edit ``source`` as ``request`` says, write the edit atomically at ``output`` with its record inside, and
    (given ``results``) append ``{"status": "ok", record, output, source, mask, seconds, annotations}`` to that
    ``results.jsonl``; the file and its line are written with Ctrl-C held back. Returns ``(record, EditResult)``.
    ``origin`` goes into the record after the request: how a setting was derived (a batch run's ``run_seed``).

    ``progress``: True for a bar over the steps, False for none, or a tqdm bar to update.
    """
    from tqdm import tqdm

    if source.sha256 != request.source_sha256 or (mask and mask.sha256) != request.mask_sha256:
        raise ValueError(f"the source {source} (or its mask) is not the one this request was made for")
    output = Path(output)
    check_output_name(output, request.media)  # before the edit, not after it
    settings = request.settings
    outcome = {}
    if request.media == "video":  # what the file will keep of the rate; refused now if it cannot hold it
        from ..media.video import stored_fps

        outcome["fps"] = stored_fps(output, source.fps)
    local = {} if mask is None else {"mask": mask.picture, "feather": request.feather}
    bar = progress if not isinstance(progress, bool) else None
    with tqdm(
        total=settings.integration_steps,
        desc=desc or settings.method,
        unit="step",
        leave=False,
        disable=bar is not None or not progress,
    ) as own:
        picture, result = editor.render(
            source.picture, request.source_prompt, request.target_prompt, settings, progress=bar or own, **local
        )
    if request.media == "video":
        outcome["frames"] = len(picture)
    record = request.record(result.outcome | outcome) | (origin or {})
    with uninterrupted():
        save_output(picture, output, record, source.fps)
        if results is not None:
            where = {"output": str(output), "source": None if source.path is None else str(source.path)}
            where["mask"] = None if mask is None or mask.path is None else str(mask.path)
            extra = {"seconds": round(result.seconds, 3), **(annotations or {})}
            append_record(results, {"status": "ok", **record, **where, **extra})
    return record, result
