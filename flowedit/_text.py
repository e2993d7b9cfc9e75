"""Text that leaves the program: bounded, printable messages and strict JSON (no NaN), for every layer above the core."""

from __future__ import annotations

import json
import math
import reprlib
from typing import Any

__all__ = ["MAX_MESSAGE", "MAX_REASON", "bounded", "dumps_strict", "loads_strict", "printable", "reason", "short"]

MAX_REASON = 300  # characters of an error kept in a record or printed
MAX_MESSAGE = 500  # characters of an error line on the console

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, newlines) and lone surrogates written as escapes."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else repr(c)[1:-1] for c in text)


def short(value: Any, limit: int = 60) -> str:
    """A bounded ``repr`` (bounded in time too: a YAML alias bomb is not expanded), safe for a terminal."""
    text = printable(_REPR.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded(text: str) -> str:
    """The first line of ``text``, at most :data:`MAX_MESSAGE` characters."""
    lines = text.splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


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


def dumps_strict(value: Any) -> str:
    """``value`` as one line of strict JSON: non-finite floats become null."""
    return json.dumps(_strict(value), allow_nan=False)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


def loads_strict(text: str | bytes) -> Any:
    """Strict JSON (``NaN`` and ``Infinity`` refused with ``ValueError``; deep nesting with ``RecursionError``)."""
    return json.loads(text, parse_constant=_reject_constant)
