"""Batch edits from a YAML file in the reference format (:func:`load_jobs`): confined, resumable,
crash-safe, shareable. What a run guarantees:

- **Outputs stay inside the out-dir.** Codes and image stems are checked before any model loads
  (no path separators, ``..``, leading dots, control characters; at most 100 characters), and no
  write follows a symbolic link (``results.jsonl``, an output, an image's folder).
- **A run knows what it resumes.** Each output PNG carries its own record (a ``flowedit`` text
  chunk): model, dtype, method, every setting, run seed and derived seed, prompts and the SHA-256 of
  the input image. An edit is done only if that record equals the current request; outputs made
  with other settings stop the run before any work (exit 2) unless ``overwrite=True`` redoes them.
- **results.jsonl survives crashes.** One strict-JSON line per finished (or failed) edit, appended
  under a file lock, always on a fresh line, written whole or rolled back; a damaged line is
  skipped with a warning by :func:`read_records`. An output whose record never reached the file
  (a kill between the two writes) gets it on the next run, from the PNG's own record.
- **Several runs share an out-dir.** Each edit is claimed with a lock (``.flowedit-locks/`` in the
  out-dir; released by the operating system when its process ends), so independent runs and the
  processes of ``accelerate launch`` never do an edit twice, and a killed writer's temporary files
  are removed only by the next owner of the edit.

Each edit's seed is derived from the run seed, the image's bytes and the two prompts, never from its
position in the file. Under ``accelerate launch`` (or any launcher that sets ``RANK`` and
``WORLD_SIZE``) process ``r`` of ``N`` takes every ``N``-th edit of the list sorted by output path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._files import temporaries_of
from ._jobs import LOCKS, RESULTS, EditJob, load_jobs
from ._locks import claim, profile, uninterrupted
from ._records import append_record, differences, embedded_record, read_records, reason, request_id, save_image
from .models._images import ImageLimits, decode_image, read_image_file
from .models._settings import EditSettings
from .models._video import decode_video, save_video

__all__ = [
    "BatchSummary",
    "EditJob",
    "append_record",
    "derive_seed",
    "load_jobs",
    "process_shard",
    "read_records",
    "run_jobs",
    "save_image",
]


def derive_seed(run_seed: int, image_bytes: bytes, source_prompt: str, target_prompt: str) -> int:
    """A 63-bit seed from the run seed, the image content and the prompts (not the position in the file)."""
    return _seed(run_seed, hashlib.sha256(image_bytes).digest(), source_prompt, target_prompt)


def _seed(run_seed: int, image_digest: bytes, source_prompt: str, target_prompt: str) -> int:
    digest = hashlib.sha256()
    for part in (str(run_seed).encode(), image_digest, source_prompt.encode(), target_prompt.encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    return int.from_bytes(digest.digest()[:8], "little") & (2**63 - 1)


def process_shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process, from the launcher's environment; (0, 1, 0) alone."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


@dataclass
class BatchSummary:
    """What a run of :func:`run_jobs` did in this process."""

    done: int = 0  # edited now
    skipped: int = 0  # already done with these settings
    busy: int = 0  # being edited by another run at the same time
    failed: list[dict] = field(default_factory=list)  # the failure records


class _Requests:
    """Builds the request of every edit; keeps each input image's SHA-256 (never its bytes)."""

    def __init__(self, defaults: EditSettings, options: dict, run_seed: int, model: str, dtype: str, limits):
        self.defaults, self.options, self.run_seed = defaults, options, run_seed
        self.model, self.dtype, self.limits = model, dtype, limits
        self._digests: dict[Path, bytes | ValueError] = {}

    def read(self, job: EditJob, path: Path | None = None) -> bytes:
        """The job's image file (or ``path``, its mask), bounded (``ValueError`` if it cannot be read within the
        limits); its SHA-256 is kept for the request."""
        path = job.image if path is None else path
        try:
            data = read_image_file(path, self.limits)
        except ValueError as err:
            self._digests[path] = err
            raise
        self._digests[path] = hashlib.sha256(data).digest()
        return data

    def _digest(self, job: EditJob, path: Path) -> bytes:
        if path not in self._digests:
            with contextlib.suppress(ValueError):  # kept, and raised below
                self.read(job, path)
        digest = self._digests[path]
        if isinstance(digest, ValueError):
            raise digest
        return digest

    def __call__(self, job: EditJob, data: bytes | None = None) -> tuple[dict, EditSettings]:
        """``(request, settings)`` of ``job`` for the image ``data`` (default: as last read)."""
        if data is not None:
            self._digests[job.image] = hashlib.sha256(data).digest()
        digest = self._digest(job, job.image)
        seed = _seed(self.run_seed, digest, job.source_prompt, job.target_prompt)
        settings = self.defaults.replace(**{**self.options, **job.overrides, "seed": seed})
        request = {"model": self.model, "dtype": self.dtype, "image_sha256": digest.hex()}
        request |= {"source_prompt": job.source_prompt, "target_prompt": job.target_prompt}
        request |= {"run_seed": self.run_seed, **asdict(settings)}
        if job.mask is not None:
            request |= {"mask_sha256": self._digest(job, job.mask).hex(), "feather": job.feather}
        return request, settings


def _remove_temporaries(output: Path) -> None:
    """A killed writer's temporary files of ``output`` (call only while holding the edit's claim)."""
    for stale in temporaries_of(output):
        stale.unlink(missing_ok=True)


def _state(job: EditJob, requests: _Requests) -> tuple[str, str]:
    """``("missing" | "done" | "other" | "unchecked", why)`` of an output against the current request."""
    if not os.path.lexists(job.output):
        return "missing", ""
    try:
        request, _ = requests(job)
    except ValueError as err:  # the input is unreadable: the output is left as it is, and said so
        return "unchecked", reason(err)
    if os.path.islink(job.output):
        return "other", "a symbolic link"
    record = embedded_record(job.output)
    if record is None:
        return "other", "not written by flowedit run"
    if record.get("request_id") == request_id(request):
        return "done", ""
    return "other", f"made with {differences(record, request)}"


def _real_folder(folder: Path, out_dir: Path) -> None:
    """Create ``folder`` (a child of ``out_dir``) unless it exists; refuse a symbolic link or a file there."""
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        pass
    if folder.is_symlink() or not folder.is_dir() or folder.resolve() != out_dir.resolve() / folder.name:
        raise ValueError(f"{folder} is not a folder inside {out_dir} (a symbolic link or a file?); remove it")


def _prepare_out_dir(out_dir: Path, jobs: list[EditJob]) -> None:
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} exists and is not a folder; choose another path")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / RESULTS
    if os.path.lexists(results):
        info = os.lstat(results)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            raise ValueError(
                f"{results} is not a plain file of this folder (a symbolic or hard link?); "
                "remove it or choose a fresh --out-dir"
            )
    for folder in {out_dir / LOCKS} | {job.output.parent for job in jobs}:
        _real_folder(folder, out_dir)


def _base(job: EditJob) -> dict:
    """The fields of every record of ``job``: which entry, image, prompts and output."""
    return {"image": str(job.image), "code": job.code, "output": str(job.output), "where": job.where} | {
        "source_prompt": job.source_prompt,
        "target_prompt": job.target_prompt,
    }


class _Run:
    """One process's share of a batch run: claims, edits, records."""

    def __init__(self, out_dir: Path, requests: _Requests, load_editor, editor, overwrite: bool, progress: bool):
        self.out_dir, self.results, self.requests = out_dir, out_dir / RESULTS, requests
        self.load_editor, self.editor, self.overwrite, self.progress = load_editor, editor, overwrite, progress
        self.summary = BatchSummary()
        self._recorded: set | None = None  # (output, request_id) of the ok records, read when first needed

    def fail(self, job: EditJob, error: str) -> None:
        failure = {"status": "failed", **_base(job), "error": error}
        self.summary.failed.append(failure)
        append_record(self.results, failure)

    def record_if_missing(self, job: EditJob) -> None:
        """Give a finished output whose record a kill cut off its record, from the PNG's own (once)."""
        own = embedded_record(job.output)
        key = (str(job.output), None if own is None else own.get("request_id"))
        if own is None or (self._recorded is not None and key in self._recorded):
            return
        self._recorded = {
            (r["output"], r["request_id"])
            for r in read_records(self.results)
            if r.get("status") == "ok" and isinstance(r.get("output"), str) and isinstance(r.get("request_id"), str)
        }
        if key not in self._recorded:
            append_record(self.results, {"status": "ok", **_base(job), **own, "recovered": True})
            self._recorded.add(key)

    def skip(self, job: EditJob) -> None:
        self.summary.skipped += 1
        with claim(self.out_dir, job.output) as held:
            if held:  # else its owner is recording it right now
                self.record_if_missing(job)
                _remove_temporaries(job.output)

    def edit(self, job: EditJob) -> None:
        """Claim ``job`` and, unless another run did or does it, edit it, save the output and record it."""
        from tqdm import tqdm

        with claim(self.out_dir, job.output) as held:
            if not held:
                self.summary.busy += 1
                return
            state, why = _state(job, self.requests)  # again, now that the edit is ours: another run may have done it
            if state == "done":
                self.summary.skipped += 1
                self.record_if_missing(job)
                return
            if state == "other" and not self.overwrite:
                self.fail(job, f"another run wrote this output meanwhile ({why}); pass --overwrite to redo it")
                return
            _remove_temporaries(job.output)
            self.editor = self.editor or self.load_editor()  # a model that cannot load stops the run
            start = time.perf_counter()
            try:
                if job.media != self.editor.family.media:
                    raise ValueError(f"{self.editor.family.name} edits {self.editor.family.media}s, not {job.media}s")
                data = self.requests.read(job)  # read again: what is edited is what is recorded
                local = {}
                if job.mask is not None:  # read again too, so the mask edited with is the one recorded
                    mask_data = self.requests.read(job, job.mask)
                    local = {
                        "mask": decode_image(mask_data, self.requests.limits, str(job.mask)),
                        "feather": job.feather,
                    }
                request, settings = self.requests(job, data)
                image = (decode_video if job.video else decode_image)(data, self.requests.limits, str(job.image))
                steps = settings.integration_steps
                with tqdm(total=steps, desc=job.code, unit="step", leave=False, disable=not self.progress) as bar:
                    picture, result = self.editor.render(
                        image, job.source_prompt, job.target_prompt, settings, progress=bar, **local
                    )
                # Only what the request decides goes into the PNG: the same edit gives the same file.
                own = {"request_id": request_id(request), **request, **result.outcome}
            except Exception as err:  # one bad entry must not stop the run: record it and go on
                self.fail(job, reason(err))
                return
            seconds = round(time.perf_counter() - start, 3)
            with uninterrupted():  # Ctrl-C waits until the output and its record are both written
                try:
                    if job.video:
                        save_video(picture, job.output, image.fps, own)
                    else:
                        save_image(picture, job.output, own)
                except Exception as err:
                    self.fail(job, reason(err))
                    return
                append_record(self.results, {"status": "ok", **_base(job), **own, "seconds": seconds})
            self.summary.done += 1


def run_jobs(
    jobs: list[EditJob],
    load_editor: Callable[[], Any],
    out_dir: str | Path,
    run_seed: int,
    options: dict,
    *,
    model: str,
    dtype: str,
    defaults: EditSettings | None = None,
    overwrite: bool = False,
    limits: ImageLimits | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Run every job of this process that is not done yet with the current request; a :class:`BatchSummary`.

    ``load_editor`` is called at most once, only if there is work (or to learn the model's
    ``defaults`` when they are not given). ``options`` are the run's settings; an entry's own
    overrides take precedence. ``model`` and ``dtype`` name what edits (they are part of each
    request). Outputs made with other settings raise ``ValueError`` before any edit unless
    ``overwrite`` (then they are redone).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, jobs)
    editor = None
    if defaults is None:  # an unknown model family: its defaults come with the model
        editor = load_editor()
        defaults = editor.defaults
    requests = _Requests(defaults, options, run_seed, model, dtype, limits or ImageLimits())
    states = {job.output: _state(job, requests) for job in jobs}  # every process checks every job: one verdict
    others = [(job, states[job.output][1]) for job in jobs if states[job.output][0] == "other"]
    if others and not overwrite:
        job, why = others[0]
        raise ValueError(
            f"{len(others)} of {len(jobs)} outputs in {out_dir} are not this run's edits "
            f"({job.output.relative_to(out_dir).as_posix()}: {why}); pass --overwrite to redo them, "
            "or choose a fresh --out-dir"
        )
    rank, world, _ = process_shard()
    mine = sorted(jobs, key=lambda job: job.output.as_posix())[rank::world]
    run = _Run(out_dir, requests, load_editor, editor, overwrite, progress)
    todo = []
    with profile(out_dir, jobs, requests):
        for job in mine:
            state, why = states[job.output]
            if state == "unchecked":  # nothing is recorded: the output's last record stays true
                run.summary.failed.append({**_base(job), "error": f"output kept, not checked: {why}"})
            elif state == "done":
                run.skip(job)
            else:
                todo.append(job)
        desc = "edits" if world == 1 else f"edits [process {rank + 1}/{world}]"
        for job in tqdm(todo, desc=desc, unit="edit", disable=not progress):
            run.edit(job)
    return run.summary
