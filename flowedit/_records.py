"""Records of edits: ``results.jsonl`` (strict JSON, crash-safe appends) and the record inside each output PNG."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import reprlib
import stat
import warnings
from pathlib import Path
from typing import Any

from ._files import write_atomically

__all__ = ["append_record", "embedded_record", "read_records", "reason", "request_id", "save_image"]

RECORD_KEY = "flowedit"  # the PNG text chunk that holds an output's record
MAX_REASON = 300  # characters of an error kept in a record or printed


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def short(value: Any, limit: int = 60) -> str:
    """A bounded ``repr`` (bounded in time too: a YAML alias bomb is not expanded), safe for a terminal."""
    text = _REPR.repr(value)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, newlines) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def reason(err: BaseException) -> str:
    """``"Type: first line of the message"``, at most :data:`MAX_REASON` characters."""
    kind = next(k for k in type(err).__mro__ if not k.__name__.startswith("_")).__name__  # no private names
    lines = str(err).splitlines()
    text = printable(f"{kind}: {lines[0]}" if lines else kind)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def _json(record: dict) -> str:
    return json.dumps(_strict(record), allow_nan=False)


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
    line = (_json(record) + "\n").encode()
    try:
        fd = os.open(results, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise OSError(f"{results}: cannot open it for appending ({err.strerror}); is it a symbolic link?") from None
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


def _reject_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


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
                record = json.loads(line, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                record = None
            if not isinstance(record, dict):
                warnings.warn(
                    f"{results}: line {number} is damaged (cut short or not a JSON object); skipped", stacklevel=2
                )
                continue
            records.append(record)
    return records


def save_image(image, output: str | Path, record: dict | None = None) -> None:
    """Write a PIL image atomically; a PNG also carries ``record`` (as JSON in a ``flowedit`` text chunk)."""
    output = Path(output)
    options = {}
    if record is not None and output.suffix.lower() == ".png":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text(RECORD_KEY, _json(record))
        options["pnginfo"] = info
    write_atomically(output, lambda tmp: image.save(tmp, **options))  # the format follows the suffix


def embedded_record(output: Path) -> dict | None:
    """The record inside an output PNG (or MP4, GIF), or None (no such file, a symbolic link, not flowedit's)."""
    from PIL import Image

    try:
        if not stat.S_ISREG(os.lstat(output).st_mode):
            return None
        from .models._video import VIDEO_SUFFIXES, video_record

        if output.suffix.lower() in VIDEO_SUFFIXES:
            return video_record(output)
        with Image.open(output) as image:
            record = json.loads(image.info.get(RECORD_KEY, "null"), parse_constant=_reject_constant)
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def request_id(request: dict) -> str:
    """A short hash of a request (canonical JSON)."""
    return hashlib.sha256(_json(dict(sorted(request.items()))).encode()).hexdigest()[:16]


def differences(old: dict, new: dict) -> str:
    keys = [k for k in new if old.get(k) != new[k]]
    return ", ".join(f"{k} {short(old.get(k), 30)} -> {short(new[k], 30)}" for k in keys[:4]) or "unknown"
