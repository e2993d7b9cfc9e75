"""Batch files in the reference format: read bounded, validated, turned into edit jobs whose outputs stay inside the out-dir.

A batch file is a list of entries::

    - input_img: images/cat.png          # or init_img; relative to the YAML file (or the cwd)
      source_prompt: a photo of a cat
      target_prompts: [a photo of a dog, a photo of a fox]
      target_codes: [dog, fox]           # names the outputs: <out-dir>/<image stem>/<code>.png
      n_max: 30                          # optional per-entry overrides of any edit setting
      mask: masks/cat_face.png           # optional: a local edit (white = edit), relative like input_img
      feather: 4                         # optional, with a mask: soften its edge by this many pixels
    - input_video: clips/car.mp4         # a video family's entry: a video file (GIF, MP4, ...; not a folder)
      source_prompt: a red car
      target_prompts: [a blue bus]
      target_codes: [bus]
"""

from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._files import read_regular_file
from .._text import short
from ..models._arguments import check_prompt
from ..models._settings import EditSettings

__all__ = ["EditJob", "check_name", "load_jobs"]

OVERRIDES = tuple(f.name for f in fields(EditSettings) if f.name != "seed")  # keys an entry may set
MAX_BATCH_FILE_BYTES = 8 * 1024 * 1024  # tens of thousands of entries; parsing it takes seconds, not minutes
MAX_NAME = 100  # characters of a code or image stem
RESULTS = "results.jsonl"  # in the out-dir, beside the image folders
LOCKS = ".flowedit-locks"


@dataclass(frozen=True)
class EditJob:
    """One (image, source prompt, target prompt) edit of a batch file and where its output goes."""

    image: Path  # or, for a sweep of a picture held in memory, a flowedit.media.source.Source
    source_prompt: str
    target_prompt: str
    code: str
    output: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    where: str = ""  # "FILE: entry N" for messages
    mask: Path | None = None  # a local edit's mask image (white = edit), or a Source as ``image``
    feather: float = 0.0  # pixels of soft mask edge
    video: bool = False  # the input is a video (``input_video``); the output an MP4
    seed: int | None = None  # the edit's own seed (a sweep's cell); None: derived from the run seed

    @property
    def media(self) -> str:
        return "video" if self.video else "image"


def _fail(where: str, message: str) -> None:
    raise ValueError(f"{where}: {message}")


def _invisible(c: str) -> bool:
    """Control, format, surrogate and unassigned characters, and line or paragraph separators."""
    return unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")


def check_name(name: str, what: str, where: str) -> str:
    """``name`` if it can name a file inside the out-dir, else ``ValueError`` naming the entry and why."""
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_NAME:
        problem = f"it is longer than {MAX_NAME} characters"
    elif "/" in name or "\\" in name:
        problem = "it contains a path separator"
    elif name.startswith("."):
        problem = "it starts with a dot ('..' climbs out of the output folder, '.x' is hidden)"
    elif any(_invisible(c) for c in name):
        problem = "it contains control or invisible characters"
    elif name != name.strip() or name.endswith("."):
        problem = "it starts or ends with a space, or ends with a dot (other file systems drop them)"
    elif name == RESULTS:
        problem = f"it is the name of the run's {RESULTS}"
    if problem:
        _fail(where, f"{what} {short(name)} cannot name an output file: {problem}; use letters, digits, '-' or '_'")
    return name


def _folded(output: Path) -> str:
    """``output`` as a case-insensitive, normalising file system (macOS, SMB, exFAT) would see it."""
    return unicodedata.normalize("NFC", output.as_posix()).casefold()


def _prompt(value: Any, where: str, key: str) -> str:
    """``value`` if it is a prompt (a string of at most ``MAX_PROMPT`` characters, UTF-8, no control characters)."""
    try:
        return check_prompt(value, f"key '{key}'")
    except ValueError as err:
        _fail(where, str(err))


def _strings(value: Any, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        _fail(where, f"key '{key}' must be a non-empty list of non-empty strings, got {short(value)}")
    return value


def _path(entry: dict, key: str, where: str, batch_file: Path) -> Path:
    """The file an entry's ``key`` names, relative to the batch file's folder when it exists there."""
    if any(_invisible(c) for c in entry[key]):
        _fail(where, f"key '{key}' {short(entry[key])} holds control characters; it is not a path")
    target = Path(entry[key])
    try:
        if not target.is_absolute() and (batch_file.parent / target).exists():
            target = batch_file.parent / target
    except OSError:  # a name the file system cannot hold: reading the file will say so
        pass
    return target


def _mask(entry: dict, where: str, batch_file: Path) -> tuple[Path | None, float]:
    """An entry's optional ``mask`` path and ``feather`` radius, checked."""
    if "mask" not in entry:
        if "feather" in entry:
            _fail(where, "key 'feather' softens a mask's edge; give a 'mask' too")
        return None, 0.0
    if not isinstance(entry["mask"], str) or not entry["mask"]:
        _fail(where, "key 'mask' must be the path of a mask image (white = edit)")
    feather = entry.get("feather", 0.0)
    if isinstance(feather, bool) or not isinstance(feather, int | float) or not 0 <= feather < float("inf"):
        _fail(where, f"key 'feather' must be a radius in pixels >= 0, got {short(feather)}")
    return _path(entry, "mask", where, batch_file), float(feather)


class _RepeatedKey(ValueError):
    """A key given twice in one mapping of a batch file (YAML itself keeps the last value silently)."""


def _check_repeated_keys(loader: Any, root: Any) -> None:
    """Raise :class:`_RepeatedKey` naming the entry (the item of the top-level list), the key and both lines if a
    mapping anywhere in the document ``root`` (a composed YAML node) holds a key twice. Each node is visited
    once (an alias is not expanded again)."""
    import yaml

    top = list(enumerate(root.value, start=1)) if isinstance(root, yaml.SequenceNode) else [(0, root)]
    stack, seen = [(number, node) for number, node in reversed(top)], set()
    while stack:
        number, node = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((number, item) for item in node.value)
            continue
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            stack.extend([(number, key_node), (number, value_node)])
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key, line = loader.construct_object(key_node), key_node.start_mark.line + 1
            if key in lines:
                where = f"entry {number}: " if number else ""
                raise _RepeatedKey(f"{where}key {short(key)} is given twice (lines {lines[key]} and {line}); keep one")
            lines[key] = line


@functools.cache
def _strict_loader() -> type:
    """YAML's safe loader (libyaml's C parser where it is installed) that refuses a key repeated in a mapping."""
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        def construct_document(self, node):
            _check_repeated_keys(self, node)
            return super().construct_document(node)

    return StrictLoader


def load_jobs(path: str | Path, out_dir: str | Path) -> list[EditJob]:
    """Read and validate a batch file (at most 8 MB); errors name the file, the entry and the key."""
    import yaml

    path, out_dir = Path(path), Path(out_dir)
    try:
        text = read_regular_file(path, MAX_BATCH_FILE_BYTES, "batch file").decode("utf-8")
        entries = yaml.load(text, Loader=_strict_loader())  # safe, and fast with libyaml
    except _RepeatedKey as err:
        raise ValueError(f"{path}: {err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: a batch file must be UTF-8 text") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({short(str(err).splitlines()[0], 200)})") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a batch file") from None
    if not isinstance(entries, list) or not entries:
        _fail(str(path), "a batch file must be a non-empty list of entries")
    jobs, outputs = [], {}
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict):
            _fail(where, f"an entry must be a mapping of keys, got {type(entry).__name__}")
        given = [key for key in ("input_img", "init_img", "input_video") if key in entry]
        if len(given) > 1:
            _fail(where, f"keys {' and '.join(given)} both name the input; give one")
        image_key = given[0] if given else "input_img"
        if image_key not in entry or not isinstance(entry[image_key], str) or not entry[image_key]:
            _fail(where, "key 'input_img' (or 'init_img', or 'input_video') is missing or not a path")
        video = image_key == "input_video"
        if not isinstance(entry.get("source_prompt"), str):
            _fail(where, "key 'source_prompt' is missing or not a string")
        _prompt(entry["source_prompt"], where, "source_prompt")
        prompts = [
            _prompt(p, where, "target_prompts") for p in _strings(entry.get("target_prompts"), where, "target_prompts")
        ]
        codes = _strings(entry.get("target_codes"), where, "target_codes")
        if len(codes) != len(prompts):
            _fail(where, f"key 'target_codes' has {len(codes)} codes for {len(prompts)} target prompts")
        known = {image_key, "source_prompt", "target_prompts", "target_codes", "mask", "feather", *OVERRIDES}
        for key in entry:
            if key not in known:
                _fail(where, f"unknown key {short(key)}; per-entry overrides are {', '.join(OVERRIDES)}, mask, feather")
        mask, feather = _mask(entry, where, path)
        if video and mask is not None:
            _fail(where, "key 'mask' applies to images; a video edit has no mask")
        overrides = {}
        for key in OVERRIDES:
            if key in entry:
                try:
                    overrides[key] = EditSettings.parse(key, entry[key])
                except ValueError as err:
                    _fail(where, f"key '{key}': {err}")
        image = _path(entry, image_key, where, path)
        stem = check_name(image.stem, "image name", where)
        for prompt, code in zip(prompts, codes, strict=True):
            output = out_dir / stem / f"{check_name(code, 'target code', where)}{'.mp4' if video else '.png'}"
            if _folded(output) in outputs:
                _fail(
                    where,
                    f"target code '{code}' for {image.name} repeats {outputs[_folded(output)]} (letter case aside)",
                )
            outputs[_folded(output)] = where
            job = EditJob(image, entry["source_prompt"], prompt, code, output, overrides, where, mask, feather, video)
            jobs.append(job)
    sources = {os.path.realpath(job.image): job for job in jobs}
    for job in jobs:
        if os.path.realpath(job.output) in sources:
            _fail(job.where, f"output {job.output} would overwrite the input image; choose another --out-dir")
    return jobs
