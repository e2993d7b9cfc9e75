"""Batch edits from a YAML file in the reference format, resumable and position-independent.

A batch file is a list of entries::

    - input_img: images/cat.png          # or init_img; relative to the YAML file (or the cwd)
      source_prompt: a photo of a cat
      target_prompts: [a photo of a dog, a photo of a fox]
      target_codes: [dog, fox]           # names the outputs: <out-dir>/<image stem>/<code>.png
      n_max: 30                          # optional per-entry overrides of any edit setting

Each edit's seed is derived from the run seed, the image's bytes and the two prompts, never from its
position in the file. Outputs are written atomically, finished outputs are skipped on a re-run, an
edit that fails is recorded with its reason in ``results.jsonl`` and the run goes on.

Under ``accelerate launch`` (or any launcher that sets ``RANK`` and ``WORLD_SIZE``) the edits are
split across the processes by output path: process ``r`` of ``N`` takes every ``N``-th edit of the
list sorted by output, so each edit has exactly one owner whatever the number of processes, and all
processes append to the one ``results.jsonl`` under a file lock.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._files import write_atomically

__all__ = ["EditJob", "derive_seed", "load_jobs", "process_shard", "run_jobs"]

OVERRIDES = {
    "steps": int,
    "n_max": int,
    "n_min": int,
    "n_avg": int,
    "src_guidance": float,
    "tar_guidance": float,
    "method": str,
}


@dataclass(frozen=True)
class EditJob:
    """One (image, source prompt, target prompt) edit of a batch file and where its output goes."""

    image: Path
    source_prompt: str
    target_prompt: str
    code: str
    output: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # "FILE: entry N" for messages


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def _strings(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(where, f"key '{key}' must be a non-empty list of non-empty strings, got {value!r}")
    return value


def load_jobs(path: str | Path, out_dir: str | Path) -> list[EditJob]:
    """Read and validate a batch file; errors name the file, the entry and the key."""
    import yaml

    path, out_dir = Path(path), Path(out_dir)
    try:
        entries = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ValueError(f"{path}: cannot read the batch file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(entries, list) or not entries:
        _fail(str(path), "a batch file must be a non-empty list of entries")
    jobs, outputs = [], {}
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict):
            _fail(where, f"an entry must be a mapping of keys, got {type(entry).__name__}")
        image_key = "input_img" if "input_img" in entry else "init_img"
        if image_key not in entry or not isinstance(entry[image_key], str):
            _fail(where, "key 'input_img' (or 'init_img') is missing or not a path")
        if not isinstance(entry.get("source_prompt"), str):
            _fail(where, "key 'source_prompt' is missing or not a string")
        prompts = _strings(entry.get("target_prompts"), where, "target_prompts")
        codes = _strings(entry.get("target_codes"), where, "target_codes")
        if len(codes) != len(prompts):
            _fail(where, f"key 'target_codes' has {len(codes)} codes for {len(prompts)} target prompts")
        known = {image_key, "source_prompt", "target_prompts", "target_codes", *OVERRIDES}
        for key in entry:
            if key not in known:
                _fail(where, f"unknown key '{key}'; per-entry overrides are {', '.join(OVERRIDES)}")
        overrides = {}
        for key, kind in OVERRIDES.items():
            if key in entry:
                value = entry[key]
                if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
                    _fail(where, f"key '{key}' must be {kind.__name__}, got {value!r}")
                overrides[key] = kind(value)
        image = Path(entry[image_key])
        if not image.is_absolute() and (path.parent / image).exists():
            image = path.parent / image
        for prompt, code in zip(prompts, codes, strict=True):
            output = out_dir / image.stem / f"{code}.png"
            if output in outputs:
                _fail(where, f"target code '{code}' for {image.name} repeats {outputs[output]}")
            outputs[output] = where
            jobs.append(EditJob(image, entry["source_prompt"], prompt, code, output, overrides, where))
    return jobs


def derive_seed(run_seed: int, image_bytes: bytes, source_prompt: str, target_prompt: str) -> int:
    """A 63-bit seed from the run seed, the image content and the prompts (not the position in the file)."""
    digest = hashlib.sha256()
    for part in (
        str(run_seed).encode(),
        hashlib.sha256(image_bytes).digest(),
        source_prompt.encode(),
        target_prompt.encode(),
    ):
        digest.update(len(part).to_bytes(8, "little") + part)
    return int.from_bytes(digest.digest()[:8], "little") & (2**63 - 1)


def process_shard() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process, from the launcher's environment; (0, 1, 0) alone."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def _append(results: Path, record: dict) -> None:
    """Append one JSON line, whole, under an exclusive lock (several processes share the file)."""
    line = (json.dumps(record) + "\n").encode()
    fd = os.open(results, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing releases the lock


def _remove_stale_temporaries(output: Path) -> None:
    """Temporary files of exactly this output left by a killed run (only the output's owner calls this).

    :func:`write_atomically` names them ``.<stem>.<pid>.<8 hex digits><suffix>``.
    """
    own = re.compile(rf"\.{re.escape(output.stem)}\.\d+\.[0-9a-f]{{8}}{re.escape(output.suffix)}")
    for stale in output.parent.glob(f".{glob.escape(output.stem)}.*"):
        if own.fullmatch(stale.name):
            stale.unlink(missing_ok=True)


def _save_png(image, output: Path) -> None:
    write_atomically(output, lambda tmp: image.save(tmp))  # the format follows the suffix


def run_jobs(
    jobs: list[EditJob], editor: Callable[[], Any], out_dir: str | Path, run_seed: int, options: dict, progress=True
):
    """Run every job of this process whose output does not exist yet; returns ``(done, skipped, failed)``.

    ``editor`` is called once, only if there is work, to load the model. ``options`` are the
    command-line settings; an entry's own overrides take precedence.
    """
    from PIL import Image
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.jsonl"
    rank, world, _ = process_shard()
    mine = sorted(jobs, key=lambda job: job.output.as_posix())[rank::world]
    todo = [job for job in mine if not job.output.exists()]
    done = failed = 0
    instance = editor() if todo else None
    desc = "edits" if world == 1 else f"edits [process {rank + 1}/{world}]"
    for job in tqdm(todo, desc=desc, unit="edit", disable=not progress):
        _remove_stale_temporaries(job.output)
        record = {"image": str(job.image), "code": job.code, "source_prompt": job.source_prompt}
        record |= {"target_prompt": job.target_prompt, "output": str(job.output)}
        start = time.perf_counter()
        try:
            data = job.image.read_bytes()
            seed = derive_seed(run_seed, data, job.source_prompt, job.target_prompt)
            settings = instance.settings(**{**options, **job.overrides, "seed": seed})
            with Image.open(job.image) as opened:
                image = opened.convert("RGB")
            steps = settings.integration_steps
            with tqdm(total=steps, desc=job.code, unit="step", leave=False, disable=not progress) as bar:
                result = instance.edit_latents(image, job.source_prompt, job.target_prompt, settings, progress=bar)
            _save_png(instance.decode(result.edited, result.context)[0], job.output)
        except Exception as err:  # one bad entry must not stop the run: record it and go on
            failed += 1
            _append(results, record | {"status": "failed", "error": f"{type(err).__name__}: {err}", "where": job.where})
            continue
        done += 1
        record |= {"status": "ok", "run_seed": run_seed, **asdict(settings), "model_calls": result.model_calls}
        record |= {"seconds": round(time.perf_counter() - start, 3), "transport_cost": result.transport_cost}
        _append(results, record)
    return done, len(mine) - len(todo), failed
