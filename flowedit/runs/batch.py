"""Batch edits from a YAML file in the reference format (:func:`load_jobs`): confined, resumable,
crash-safe, shareable. What a run guarantees:

- **Outputs stay inside the out-dir.** Codes and image stems are checked before any model loads
  (no path separators, ``..``, leading dots, control characters; at most 100 characters), and no
  write follows a symbolic link (``results.jsonl``, an output, an image's folder).
- **A run knows what it resumes.** Each output carries its own record (a PNG's ``flowedit`` text
  chunk, a video's comment; :class:`~flowedit.runs.EditRequest`): model, dtype, every setting, the
  derived seed and its run seed, prompts and the fingerprint of the input's decoded pixels. An edit is done only if that record equals the current request; outputs made
  with other settings stop the run before any work (exit 2) unless ``overwrite=True`` redoes them.
- **results.jsonl survives crashes.** One strict-JSON line per finished (or failed) edit, appended
  under a file lock, always on a fresh line, written whole or rolled back; a damaged line is
  skipped with a warning by :func:`read_records`. An output whose record never reached the file
  (a kill between the two writes) gets it on the next run, from the output's own record.
- **Several runs share an out-dir.** Each edit is claimed with a lock (``.flowedit-locks/`` in the
  out-dir; released by the operating system when its process ends), so independent runs and the
  processes of ``accelerate launch`` never do an edit twice, and a killed writer's temporary files
  are removed only by the next owner of the edit.

Each edit's seed is derived from the run seed, the image's pixels and the two prompts, never from its
position in the file. Under ``accelerate launch`` (or any launcher that sets ``RANK`` and
``WORLD_SIZE``) process ``r`` of ``N`` takes every ``N``-th edit of the list sorted by output path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import file_kind_of, temporaries_of
from .._text import reason, short
from ..media.images import ImageLimits
from ..media.source import Source, embedded_record, read_mask, read_source
from ..models._settings import EditSettings
from .jobs import LOCKS, RESULTS, EditJob
from .locks import claim, profile
from .records import append_record, differences, read_records
from .request import EditRequest, edit_to_file

__all__ = ["BatchSummary", "derive_seed", "prepare_out_dir", "process_shard", "run_jobs"]


def derive_seed(run_seed: int, source_sha256: str, source_prompt: str, target_prompt: str) -> int:
    """A 63-bit seed from the run seed, the source's fingerprint (:func:`flowedit.media.source.fingerprint`, its decoded
    pixels) and the prompts: never from the entry's position in the file."""
    digest = hashlib.sha256()
    for part in (str(run_seed).encode(), bytes.fromhex(source_sha256), source_prompt.encode(), target_prompt.encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    return int.from_bytes(digest.digest()[:8], "little") & (2**63 - 1)


def process_shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process, from the launcher's environment; (0, 1, 0) alone.

    ``WORLD_SIZE`` >= 1, ``0 <= RANK < WORLD_SIZE`` and ``LOCAL_RANK`` >= 0 (decimal integers), else one
    ``ValueError`` line naming the variable, its value and what it takes: a process that read a wrong rank
    would do part of the batch and exit 0."""

    def variable(name: str, default: int, low: int, high: int | None, takes: str) -> int:
        text = os.environ.get(name)
        if text is None:
            return default
        digits = text.strip()
        unsigned = digits[1:] if digits.startswith("-") else digits
        number = int(digits) if unsigned.isascii() and unsigned.isdigit() and len(unsigned) <= 18 else None
        if number is None or number < low or (high is not None and number > high):
            raise ValueError(
                f"environment variable {name}={short(text)} must be {takes} (set by the launcher: accelerate "
                f"launch, torchrun); unset RANK, WORLD_SIZE and LOCAL_RANK to run as one process"
            )
        return number

    world = variable("WORLD_SIZE", 1, 1, None, "an integer >= 1, the number of processes")
    rank = variable("RANK", 0, 0, world - 1, f"an integer in [0, WORLD_SIZE - 1] = [0, {world - 1}]")
    return rank, world, variable("LOCAL_RANK", 0, 0, None, "an integer >= 0, the process's GPU on its machine")


@dataclass
class BatchSummary:
    """What a run of :func:`run_jobs` did in this process."""

    done: int = 0  # edited now
    skipped: int = 0  # already done with these settings
    busy: int = 0  # being edited by another run at the same time
    failed: list[dict] = field(default_factory=list)  # the failure records
    edited: list[str] = field(default_factory=list)  # the outputs edited now


class _Requests:
    """Builds the request of every edit; keeps each input's fingerprint (never its pixels) for the checks."""

    def __init__(self, defaults: EditSettings, options: dict, run_seed: int, model: str, dtype: str, limits):
        self.defaults, self.options, self.run_seed = defaults, options, run_seed
        self.model, self.dtype, self.limits = model, dtype, limits
        self._digests: dict[Path, str | ValueError] = {}

    def source(self, job: EditJob) -> Source:
        """The job's source, read now (bounded; ``ValueError`` if it cannot be read within the limits)."""
        return self._read(job.image, lambda: read_source(job.image, job.media, self.limits))

    def mask(self, job: EditJob) -> Source | None:
        """The job's mask, read now; None without one."""
        return None if job.mask is None else self._read(job.mask, lambda: read_mask(job.mask, self.limits))

    def _read(self, given, read) -> Source:
        if isinstance(given, Source):  # in memory: read already
            return given
        try:
            source = read()
        except ValueError as err:
            self._digests[given] = err
            raise
        self._digests[given] = source.sha256
        return source

    def __call__(self, job: EditJob, source: Source | None = None, mask: Source | None = None) -> EditRequest:
        """The request of ``job`` for ``source`` and ``mask`` as read now (default: the fingerprints read last)."""
        if source is None:
            source = self._fingerprint(job, job.image, job.media)
        if mask is None and job.mask is not None:
            mask = self._fingerprint(job, job.mask, "mask")
        seed = job.seed
        if seed is None:
            seed = derive_seed(self.run_seed, source.sha256, job.source_prompt, job.target_prompt)
        settings = self.defaults.replace(**{**self.options, **job.overrides, "seed": seed})
        return EditRequest.of(
            self.model, self.dtype, source, job.source_prompt, job.target_prompt, settings, mask, job.feather
        )

    def origin(self, job: EditJob) -> dict:
        """How the job's seed was derived (its run seed), for its record; nothing for a job with its own seed."""
        return {} if job.seed is not None else {"run_seed": self.run_seed}

    def _fingerprint(self, job: EditJob, given, kind: str) -> Source:
        """A stand-in :class:`Source` that carries only the fingerprint of ``given`` (read once, then kept)."""
        if isinstance(given, Source):
            return given
        if given not in self._digests:
            with contextlib.suppress(ValueError):  # kept, and raised below
                self.mask(job) if kind == "mask" else self.source(job)
        digest = self._digests[given]
        if isinstance(digest, ValueError):
            raise digest
        return Source("image" if kind == "mask" else kind, None, digest, Path(given))


def _check_settings(jobs: list[EditJob], defaults: EditSettings, options: dict) -> None:
    """Every edit's settings, checked once before any work; the error names the entry."""
    for job in jobs:
        try:
            defaults.replace(**{**options, **job.overrides})
        except ValueError as err:
            raise ValueError(f"{job.where}: {err}") from None


def _remove_temporaries(output: Path) -> None:
    """A killed writer's temporary files of ``output`` (call only while holding the edit's claim)."""
    for stale in temporaries_of(output):
        stale.unlink(missing_ok=True)


def _state(job: EditJob, requests: _Requests) -> tuple[str, str]:
    """``("missing" | "done" | "other" | "unchecked", why)`` of an output against the current request."""
    if not os.path.lexists(job.output):
        return "missing", ""
    try:
        request = requests(job)
    except ValueError as err:  # the input is unreadable: the output is left as it is, and said so
        return "unchecked", reason(err)
    if os.path.islink(job.output):
        return "other", "a symbolic link"
    record = embedded_record(job.output)
    if record is None:
        return "other", "not written by flowedit"
    if record.get("request_id") == request.id:
        return "done", ""
    return "other", f"made with {differences(record, request.fields | requests.origin(job))}"


def _real_folder(folder: Path, out_dir: Path) -> None:
    """Create ``folder`` (a child of ``out_dir``) unless it exists; refuse a symbolic link or a file there."""
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        pass
    if folder.is_symlink() or not folder.is_dir() or folder.resolve() != out_dir.resolve() / folder.name:
        raise ValueError(f"{folder} is not a folder inside {out_dir} (a symbolic link or a file?); remove it")


def prepare_out_dir(out_dir: Path, jobs: list[EditJob]) -> None:
    """Make the out-dir and the outputs' folders, refusing links, files where folders go, folders where outputs go,
    and a ``results.jsonl`` that is not a plain file of its own; every refusal is one line naming the fix."""
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} exists and is not a folder; choose another path")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out-dir {out_dir}: cannot create it ({err.strerror}); choose another folder") from None
    results = out_dir / RESULTS
    if os.path.lexists(results):
        info = os.lstat(results)
        if stat.S_ISLNK(info.st_mode) or info.st_nlink > 1:
            why = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "a hard link to another file"
        elif not stat.S_ISREG(info.st_mode):
            why = f"not a regular file ({file_kind_of(info.st_mode)})"
        else:
            why = None
        if why is not None:
            raise ValueError(f"{results} is {why}; remove it or choose a fresh --out-dir")
    for folder in {out_dir / LOCKS} | {job.output.parent for job in jobs}:
        _real_folder(folder, out_dir)
    for job in jobs:
        if os.path.isdir(job.output) and not os.path.islink(job.output):
            raise ValueError(f"{job.output} is a folder where an output goes; remove it or choose another --out-dir")


def _path(given) -> str | None:
    """A record's path field: the path as given, or None for a picture handed in memory."""
    return None if given is None or (isinstance(given, Source) and given.path is None) else str(given)


def _entry(job: EditJob) -> dict:
    """What a results line adds to the output's own record: which entry of the batch file (or cell of a sweep)."""
    return {"code": job.code, "where": job.where}


def _failure(job: EditJob, error: str) -> dict:
    where = {"output": str(job.output), "source": _path(job.image), "mask": _path(job.mask)}
    prompts = {"source_prompt": job.source_prompt, "target_prompt": job.target_prompt}
    return {"status": "failed", **where, **_entry(job), **prompts, "error": error}


class _Run:
    """One process's share of a batch run: claims, edits, records."""

    def __init__(self, out_dir: Path, requests: _Requests, load_editor, editor, overwrite: bool, progress: bool):
        self.out_dir, self.results, self.requests = out_dir, out_dir / RESULTS, requests
        self.load_editor, self.editor, self.overwrite, self.progress = load_editor, editor, overwrite, progress
        self.summary = BatchSummary()
        self._recorded: set | None = None  # (output, request_id) of the ok records, read when first needed

    def fail(self, job: EditJob, error: str) -> None:
        failure = _failure(job, error)
        self.summary.failed.append(failure)
        append_record(self.results, failure)

    def record_if_missing(self, job: EditJob) -> None:
        """Give a finished output whose record a kill cut off its record, from the output's own (once)."""
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
            where = {"output": str(job.output), "source": _path(job.image), "mask": _path(job.mask)}
            append_record(self.results, {"status": "ok", **own, **where, **_entry(job), "recovered": True})
            self._recorded.add(key)

    def skip(self, job: EditJob) -> None:
        self.summary.skipped += 1
        with claim(self.out_dir, job.output) as held:
            if held:  # else its owner is recording it right now
                self.record_if_missing(job)
                _remove_temporaries(job.output)

    def edit(self, job: EditJob, wait: bool = False) -> None:
        """Claim ``job`` and, unless another run did or does it, edit it, save the output and record it.

        ``wait``: wait for another run's claim to end (then its edit is found done) instead of counting it busy."""
        with claim(self.out_dir, job.output, wait=wait) as held:
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
            try:
                if job.media != self.editor.family.media:
                    raise ValueError(f"{self.editor.family.name} edits {self.editor.family.media}s, not {job.media}s")
                source, mask = self.requests.source(job), self.requests.mask(job)  # read again: edited = recorded
                request = self.requests(job, source, mask)
                edit_to_file(
                    self.editor,
                    request,
                    source,
                    job.output,
                    mask=mask,
                    results=self.results,
                    origin=self.requests.origin(job),
                    annotations=_entry(job),
                    progress=self.progress,
                    desc=job.code,
                )
            except Exception as err:  # one bad entry must not stop the run: record it and go on
                self.fail(job, reason(err))
                return
            self.summary.done += 1
            self.summary.edited.append(str(job.output))


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
    editor: Any = None,
    wait: bool = False,
    shard: bool = True,
) -> BatchSummary:
    """Run every job of this process that is not done yet with the current request; a :class:`BatchSummary`.

    ``load_editor`` is called at most once, only if there is work (or to learn the model's
    ``defaults`` when they are not given), unless an ``editor`` is handed in. ``options`` are the run's settings; an
    entry's own overrides take precedence; a job's own ``seed`` replaces the one derived from ``run_seed``. ``model`` and ``dtype`` name what edits (they are part of each
    request). Outputs made with other settings raise ``ValueError`` before any edit unless
    ``overwrite`` (then they are redone). ``wait``: an edit another run is doing is waited for, not left to it.
    ``shard``: under a launcher, take this process's share of the jobs (else every process tries every job).
    """
    from tqdm import tqdm

    if out_dir is None or not str(out_dir):
        raise ValueError(f"out_dir must name a folder for the outputs, got {out_dir!r}")
    out_dir = Path(out_dir)
    if defaults is None and editor is not None:
        defaults = editor.defaults
    if defaults is not None:
        _check_settings(jobs, defaults, options)  # before the out-dir is made
    prepare_out_dir(out_dir, jobs)
    if defaults is None:  # an unknown model family: its defaults come with the model
        editor = load_editor()
        defaults = editor.defaults
        _check_settings(jobs, defaults, options)
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
    rank, world, _ = process_shard() if shard else (0, 1, 0)
    mine = sorted(jobs, key=lambda job: job.output.as_posix())[rank::world]
    run = _Run(out_dir, requests, load_editor, editor, overwrite, progress)
    todo = []
    with profile(out_dir, jobs, requests):
        for job in mine:
            state, why = states[job.output]
            if state == "unchecked":  # nothing is recorded: the output's last record stays true
                failure = _failure(job, f"output kept, not checked: {why}")
                run.summary.failed.append({k: v for k, v in failure.items() if k != "status"})
            elif state == "done":
                run.skip(job)
            else:
                todo.append(job)
        desc = "edits" if world == 1 else f"edits [process {rank + 1}/{world}]"
        for job in tqdm(todo, desc=desc, unit="edit", disable=not progress):
            run.edit(job, wait)
    return run.summary
