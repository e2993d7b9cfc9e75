"""The checks of the Python API's arguments that concern models: prompts and dtypes (pictures, masks and feather:
:mod:`flowedit.media`).

Each check refuses a bad argument with one ``ValueError`` line that names the argument, what it got and what it takes,
before any model work; what is clearly meant is accepted (a uint8 array for an image, ``"float16"`` for a dtype).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import torch

from .._text import short

__all__ = ["DTYPES", "MAX_PROMPT", "as_dtype", "check_prompt"]

MAX_PROMPT = 2000  # characters; the text encoders read at most a few hundred tokens of it
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_ALLOWED_CONTROLS = "\t\n\r"  # whitespace the tokenizers read as spaces


def check_prompt(value: Any, name: str = "prompt") -> str:
    """``value`` if it can be a prompt, else ``ValueError`` naming ``name``.

    A prompt is one ``str`` of at most :data:`MAX_PROMPT` characters (an empty one is the unconditional prompt)
    without lone surrogates (a byte that is not UTF-8: Python hands such a command-line byte over as
    ``"\\udcXX"``) or control characters other than tab, newline and carriage return. Refused: ``None``,
    numbers, bytes and lists (one edit takes one target prompt; call it once per prompt).
    """
    if not isinstance(value, str):
        hint = "; one edit takes one prompt: edit once per prompt" if isinstance(value, list | tuple) else ""
        raise ValueError(f"{name} must be a string (a prompt), got {short(value)}{hint}")
    if len(value) > MAX_PROMPT:
        raise ValueError(f"{name} holds a prompt of {len(value)} characters; at most {MAX_PROMPT} are read, shorten it")
    for position, c in enumerate(value, start=1):
        if "\ud800" <= c <= "\udfff":
            raise ValueError(
                f"{name} holds a byte that is not UTF-8 text (character {position}); write the prompt in UTF-8"
            )
        if unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS:
            raise ValueError(
                f"{name} holds the control character {c!r} (character {position}); a prompt is printable text"
            )
    return value if type(value) is str else str(value)  # a subclass (numpy's str_) as a plain str


def as_dtype(value: Any, name: str = "dtype") -> torch.dtype:
    """A floating torch dtype as it is, or one of the names of :data:`DTYPES` as its dtype; else ``ValueError``."""
    if isinstance(value, torch.dtype) and value.is_floating_point:
        return value
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    names = ", ".join(DTYPES)
    raise ValueError(f"{name} must be a floating torch dtype or one of {names}, got {short(value)}")
