"""Writing result files so that a crash never leaves a half-written one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` for a fresh hidden file beside ``path``, then move it into place with ``os.replace``.

    The temporary name is ``.<stem>.<pid>.<random><suffix>`` in the same folder (same file system, so
    the move is atomic; the suffix tells writers such as matplotlib or Pillow the format); it is
    removed if ``write`` fails. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
