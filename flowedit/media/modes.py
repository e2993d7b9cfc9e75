"""Pixels as flowedit takes them: any Pillow mode as 8-bit RGB (a source) or as gray (a mask), and arrays as pictures.

    to_rgb       any mode as 8-bit RGB; transparency composited over white; 16-bit gray scaled, not clipped
    to_gray      any mode as "L", alpha ignored: how a mask is read
    as_picture   a PIL image as it is, a uint8 array (H, W), (H, W, 3) or (H, W, 4) as a PIL image

PIL and numpy are imported inside the functions, so importing :mod:`flowedit.media` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._text import short

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

__all__ = ["as_picture", "to_gray", "to_rgb"]

_INTEGER_GRAY = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA = ("RGBA", "LA", "PA")
_PREMULTIPLIED = ("RGBa", "La")


def _over_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``round(a/255 * c + (1 - a/255) * 255) = 255 - round((255 - c) * a / 255)``, exactly, in integers.

    colour: uint8 (H, W, C); alpha: uint8 (H, W). Returns uint8 (H, W, C). ``(255 - c) * a`` is never an
    odd multiple of 127.5, so ``// 255`` after adding 127 rounds to nearest without ties.
    """
    import numpy as np

    shortfall = (255 - colour.astype(np.uint32)) * alpha.astype(np.uint32)[..., None]
    return (255 - (shortfall + 127) // 255).astype(np.uint8)


def _rgb_from_array(pixels: np.ndarray) -> Image.Image:
    """uint8 (H, W, 3), or (H, W) gray repeated into 3 channels, as a PIL "RGB" image."""
    import numpy as np
    from PIL import Image

    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))


def _has_alpha(image: Image.Image) -> bool:
    palette = getattr(image, "palette", None)
    return (
        image.mode in _ALPHA
        or (image.mode in ("1", "L", "P", "RGB") and image.info.get("transparency") is not None)
        or (image.mode == "P" and palette is not None and palette.mode == "RGBA")
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert an already opened PIL image of any mode to 8-bit RGB.

    ======================================  ==============================================================
    mode                                    rule
    ======================================  ==============================================================
    "RGB"                                   unchanged (the same object; no copy)
    "L", "1", "CMYK", "YCbCr", "LAB",       Pillow's ``convert("RGB")`` ("CMYK" naively, without an ICC
    "HSV", "RGBX", "P" (opaque)             profile: ``r = (255 - c)(255 - k) / 255``, and so on)
    "I;16", "I;16B", "I;16L", "I;16N", "I"  16-bit range to 8 bits: ``round(v * 255 / 65535)`` with v clipped
                                            to [0, 65535] (Pillow's own convert clips at 255, so a 16-bit
                                            image turns white); a PNG colour key (``info["transparency"]``)
                                            makes those pixels white
    "F"                                     Pillow's ``convert("RGB")``: clipped to [0, 255] and truncated
                                            toward zero (100.6 -> 100); float images are taken as 0..255
    "RGBA", "LA", "PA", "P" with a          composited over WHITE: ``round(a/255 c + (1 - a/255) 255)``
    transparency entry or an RGBA           per channel. A transparent background shows as white in most
    palette, "L"/"1"/"RGB" with a colour    viewers; dropping alpha (the reference code's
    key                                     ``convert("RGB")``) shows the hidden colour, usually black
    "RGBa", "La" (premultiplied alpha)      over white: ``min(c_premultiplied + 255 - a, 255)``
    ======================================  ==============================================================

    16-bit RGB(A) PNGs need no rule here: Pillow (checked with 13) already opens them as 8-bit "RGB" / "RGBA"
    holding the high byte of each sample (``v >> 8``, within one level of ``v * 255 / 65535``).

    Raises:
        ValueError: a mode Pillow cannot convert to RGB, named.
    """
    import numpy as np

    mode = image.mode
    if mode == "RGB" and not _has_alpha(image):
        return image
    if mode in _INTEGER_GRAY:
        values = np.asarray(image)  # (H, W), uint16 in the byte order of the mode, or int32 for "I"
        gray = (np.clip(values, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535  # round(v * 255 / 65535)
        rgb = np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
        key = image.info.get("transparency")
        if isinstance(key, int):
            rgb = _over_white(rgb, np.where(values == key, 0, 255).astype(np.uint8))
        return _rgb_from_array(rgb)
    if mode in _PREMULTIPLIED:
        pixels = np.asarray(image).astype(np.int32)  # (H, W, 2) or (H, W, 4): premultiplied colour, alpha
        over = np.clip(pixels[..., :-1] + 255 - pixels[..., -1:], 0, 255)  # (H, W, 1) or (H, W, 3)
        return _rgb_from_array(over[..., 0] if mode == "La" else over)
    if _has_alpha(image):
        rgba = np.asarray(image.convert("RGBA"))  # (H, W, 4); Pillow applies palettes and colour keys
        return _rgb_from_array(_over_white(rgba[..., :3], rgba[..., 3]))
    try:
        return image.convert("RGB")
    except ValueError as err:
        raise ValueError(f"cannot convert an image of mode {mode!r} to RGB ({err}); save it as an RGB PNG") from None


def to_gray(image: Image.Image) -> Image.Image:
    """An already opened PIL image of any mode as 8-bit mode "L": the luminance of its colour, alpha IGNORED.

    This is how a mask is read (white = edit): a transparent pixel counts by the colour it holds, so a mask
    means the same whether it is given as a path or as the PIL image. "L" is returned as it is; 16-bit gray
    is scaled as :func:`to_rgb` scales it (``round(v * 255 / 65535)``), a colour key ignored; premultiplied
    "RGBa" and "La" are un-premultiplied first; every other mode is Pillow's ``convert("RGB")`` (palettes
    applied, alpha dropped) and then ITU-R 601 luma ``L = (19595 R + 38470 G + 7471 B + 2^15) >> 16``
    (Pillow's ``convert("L")``, exact for gray: the weights sum to 2^16).

    Raises:
        ValueError: a mode Pillow cannot convert to RGB, named.
    """
    import numpy as np
    from PIL import Image

    mode = image.mode
    if mode == "L":
        return image
    if mode in _INTEGER_GRAY:
        values = np.asarray(image)  # (H, W), uint16 in the byte order of the mode, or int32 for "I"
        gray = (np.clip(values, 0, 65535).astype(np.uint32) * 255 + 32767) // 65535  # round(v * 255 / 65535)
        return Image.fromarray(gray.astype(np.uint8))
    if mode in _PREMULTIPLIED:
        image = image.convert(mode.upper())  # "RGBA" or "LA": the colour un-premultiplied
    if image.mode == "LA":
        return image.getchannel("L")
    try:
        rgb = image.convert("RGBA" if image.mode in ("P", "PA") else "RGB").convert("RGB")  # alpha dropped
    except ValueError as err:
        raise ValueError(f"cannot convert an image of mode {mode!r} to gray ({err}); save it as a PNG") from None
    gray = rgb.convert("L")
    gray.info.pop("transparency", None)
    return gray


def as_picture(value: Any, name: str = "image") -> Any:
    """A PIL image as it is; a uint8 array (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA as a PIL image of that mode.

    Anything else (other dtypes, shapes, empty arrays, tensors, None) is a ``ValueError`` naming ``name``.
    Paths are the caller's to read (within its limits).
    """
    import numpy as np
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    takes = "a PIL image, a path, or a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4)"
    if type(value).__module__.split(".")[0] == "torch":
        raise ValueError(
            f"{name} must be {takes}, got a torch tensor of shape {tuple(value.shape)}; convert it to such an array"
        )
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{name} must be {takes}, got {type(value).__name__} {short(value, 40)}")
    if value.dtype != np.uint8:
        raise ValueError(f"{name} must be {takes}, got an array of dtype {value.dtype}; scale it to 0..255 uint8")
    if not (value.ndim == 2 or (value.ndim == 3 and value.shape[2] in (3, 4))) or 0 in value.shape:
        raise ValueError(f"{name} must be {takes}, got an array of shape {tuple(value.shape)}")
    return Image.fromarray(np.ascontiguousarray(value))  # mode "L", "RGB" or "RGBA" from the shape
