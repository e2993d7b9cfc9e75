"""Locks of a batch run: each edit claimed by one process, Ctrl-C held back while an output and its record are
written, and an out-dir shared only by runs that ask for the same edits."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .jobs import LOCKS, EditJob

__all__ = ["claim", "profile", "uninterrupted"]


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) until the block is done, then raise ``KeyboardInterrupt`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


@contextlib.contextmanager
def claim(out_dir: Path, output: Path, wait: bool = False) -> Iterator[bool]:
    """Hold the lock of one edit while it runs (yields False if another process holds it, unless ``wait``: then it
    waits for that process to finish the edit)."""
    name = hashlib.sha256(output.relative_to(out_dir).as_posix().encode()).hexdigest()[:32]
    fd = os.open(out_dir / LOCKS / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def profile(out_dir: Path, jobs: list[EditJob], requests: Any) -> Iterator[None]:
    """Refuse to share the out-dir with a run that asks for other edits, while this run is live.

    A run's profile is a hash of everything that decides its requests except the images' pixels
    (model, dtype, run seed; each job's output, prompts and settings as resolved). The run holds a
    shared lock on ``.flowedit-locks/run-<profile>`` while it runs; processes of one launch and
    repeated runs share it. Any other profile file that is locked belongs to a live run with other
    settings: this run stops before any edit (both stop if they start at the same moment).
    """

    def settings(job: EditJob) -> list:  # as resolved, however they were spelled
        return sorted(asdict(requests.defaults.replace(**{**requests.options, **job.overrides})).items())

    layout = [(str(j.output), j.source_prompt, j.target_prompt, settings(j), j.seed) for j in jobs]
    options = [requests.model, requests.dtype, requests.run_seed, layout]
    name = "run-" + hashlib.sha256(repr(options).encode()).hexdigest()[:16]
    folder = out_dir / LOCKS
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        for other in folder.glob("run-*"):
            if other.name == name:
                continue
            probe = os.open(other, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO cannot block
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(
                    f"another run with other settings or another batch file is writing to {out_dir} right now; "
                    "wait for it to finish, or choose another --out-dir"
                ) from None
            finally:
                os.close(probe)
        yield
    finally:
        os.close(fd)
