"""``results.jsonl``: one strict-JSON line per finished (or failed) edit, appended crash-safe by several processes."""

from __future__ import annotations

import fcntl
import os
import warnings
from pathlib import Path

from .._text import dumps_strict, loads_strict, short

__all__ = ["append_record", "differences", "read_records"]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"wrote {written} bytes")
        view = view[written:]


def append_record(results: str | Path, record: dict) -> None:
    """Append ``record`` as one strict-JSON line, whole, under an exclusive lock (processes share the file).

    The line starts on a fresh line even if the last one was cut short; a short write is completed,
    and a failed one (a full disk) is rolled back before the error propagates. A symbolic link at
    ``results`` is refused (``O_NOFOLLOW``), never written through.
    """
    line = (dumps_strict(record) + "\n").encode()
    try:
        fd = os.open(results, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        import errno

        problem = {
            errno.ELOOP: "it is a symbolic link, and results are never written through one; remove the link",
            errno.EMLINK: "it is a symbolic link, and results are never written through one; remove the link",
            errno.EACCES: "permission denied; make it and its folder writable (chmod u+w) or choose another --out-dir",
            errno.EPERM: "permission denied; make it and its folder writable (chmod u+w) or choose another --out-dir",
            errno.EROFS: "the file system is read-only; choose another --out-dir",
            errno.EISDIR: "it is a folder; move it away",
            errno.ENOENT: "its folder does not exist",
        }.get(err.errno, err.strerror)
        raise OSError(f"{results}: cannot append a record ({problem})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # the last line was cut short: never glue a record onto it
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)  # closing releases the lock


def read_records(results: str | Path) -> list[dict]:
    """The records of a ``results.jsonl``, in order; a damaged line (cut short by a crash, not strict
    JSON, not an object) is skipped with a warning. Several records may name one output when it was
    redone (``--overwrite``): the last one describes the current file."""
    results = Path(results)
    if not results.exists():
        return []
    records = []
    with open(results, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = loads_strict(line)
            except (ValueError, RecursionError):
                record = None
            if not isinstance(record, dict):
                warnings.warn(
                    f"{results}: line {number} is damaged (cut short or not a JSON object); skipped", stacklevel=2
                )
                continue
            records.append(record)
    return records


def differences(old: dict, new: dict) -> str:
    keys = [k for k in new if old.get(k) != new[k]]
    return ", ".join(f"{k} {short(old.get(k), 30)} -> {short(new[k], 30)}" for k in keys[:4]) or "unknown"
