"""Files: writing results so that a crash never leaves a half-written one, reading untrusted ones bounded."""

from __future__ import annotations

import errno
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["file_kind_of", "read_regular_file", "temporaries_of", "write_atomically"]


def _temporary_name(path: Path) -> str:
    return f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}{path.suffix}"


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` for a fresh hidden file beside ``path``, then move it into place with ``os.replace``.

    The temporary name is ``.<stem>.<pid>.<8 hex digits><suffix>`` in the same folder (same file
    system, so the move is atomic; the suffix tells writers such as matplotlib or Pillow the format);
    it is removed if ``write`` fails or is interrupted. Missing parent folders are created, and
    removed again if the write fails. A symbolic link at ``path`` is replaced, never followed. An
    error that names the hidden temporary file is raised again naming ``path``, the file the caller
    asked for (same type; the original is its ``__cause__``).
    """
    path = Path(path)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / _temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except Exception as err:
        renamed = _naming_output(err, tmp, path)
        if renamed is err:
            raise
        raise renamed from err
    finally:
        tmp.unlink(missing_ok=True)
        if not path.exists():
            for folder in created:  # innermost first; only folders this call made, and only if empty
                try:
                    folder.rmdir()
                except OSError:
                    break
    return path


def _naming_output(err: Exception, tmp: Path, path: Path) -> Exception:
    """``err`` with the temporary file's name replaced by the output's, or ``err`` itself if it does not name it."""
    if isinstance(err, OSError) and tmp.name in f"{err.filename}{err.filename2}":
        return type(err)(err.errno, err.strerror, str(path))
    text = str(err)
    if tmp.name not in text:
        return err
    try:
        return type(err)(text.replace(str(tmp), str(path)).replace(tmp.name, path.name))
    except Exception:  # an exception type that cannot be built from one message
        return err


def temporaries_of(path: str | os.PathLike) -> Iterator[Path]:
    """The temporary files :func:`write_atomically` may have left for exactly ``path`` (a killed writer)."""
    path = Path(path)
    own = re.compile(rf"\.{re.escape(path.stem)}\.\d+\.[0-9a-f]{{8}}{re.escape(path.suffix)}")
    assert own.fullmatch(_temporary_name(path))  # the pattern and the naming above agree
    if path.parent.is_dir():
        yield from (p for p in path.parent.iterdir() if own.fullmatch(p.name))


def file_kind_of(mode: int) -> str:
    """What a file that is not a regular file is, from its ``st_mode``: "a directory", "a FIFO (named pipe)", ..."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "neither file nor directory")


def _megabytes(size: int) -> str:
    """``size`` bytes in MB: one decimal from 1 MB up, three significant digits below (0.000954 MB, not 0.0)."""
    megabytes = size / 2**20
    return f"{megabytes:.1f} MB" if megabytes >= 1 else f"{megabytes:.3g} MB"


def read_regular_file(path: str | os.PathLike, max_bytes: int, what: str = "file", raise_limit: str = "") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a one-line ``ValueError`` saying what is wrong.

    The file is opened with ``O_NONBLOCK`` (a FIFO cannot hang the open) and checked with ``fstat`` on
    that same descriptor: directories, FIFOs, devices (``/dev/zero``) and sockets are refused, and so
    is a file whose size is over the limit, before a byte is read. A file that grows while it is read
    is cut at ``max_bytes + 1`` bytes and refused too. ``what`` names the file in messages ("image",
    "batch file"); ``raise_limit`` says how to raise the limit.
    """
    too_large = f"over the limit of {max_bytes} bytes ({_megabytes(max_bytes)})" + (
        f"; {raise_limit}" if raise_limit else ""
    )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ValueError(f"{what} not found: {path}") from None
    except OSError as err:
        if err.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            try:
                kind = file_kind_of(os.stat(path).st_mode)
            except OSError:
                kind = err.strerror
            raise ValueError(f"{path}: not a regular file ({kind}); give the path of a file") from None
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path}: not a regular file ({file_kind_of(info.st_mode)}); give the path of a file")
        if info.st_size > max_bytes:
            raise ValueError(f"{path}: file is {info.st_size} bytes ({_megabytes(info.st_size)}), {too_large}")
        chunks, total = [], 0
        while total <= max_bytes:
            # one read of the whole file in the usual case; a file that grows is read on in chunks
            chunk = os.read(fd, min(max_bytes + 1 - total, max(info.st_size + 1 - total, 1 << 20)))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise ValueError(f"{path}: file is over {max_bytes} bytes (it grew while read), {too_large}")
        return b"".join(chunks)
    except OSError as err:
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror})") from None
    finally:
        os.close(fd)
