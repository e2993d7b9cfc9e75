"""Media: sources and outputs as files, read bounded and written atomically (images, videos, masks).

Everything read here is untrusted and bounded before use (:class:`ImageLimits`); every failure is one
``ValueError`` line that names the file and the fix. A :class:`Source` is a picture as it will be edited, with the
fingerprint every record carries; an output is written whole or not at all, with its record inside.
PIL, NumPy and PyAV are imported inside the functions, so importing this package stays light.
"""

from .images import IMAGE_SUFFIXES, ImageLimits, decode_image, open_image, read_image_file
from .masks import open_mask, pixel_mask
from .modes import to_rgb
from .source import Source, embedded_record, fingerprint, read_mask, read_source, save_image, save_output
from .video import VIDEO_SUFFIXES, Clip, decode_video, read_video, save_video, stored_fps, video_record

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Clip",
    "ImageLimits",
    "Source",
    "decode_image",
    "decode_video",
    "embedded_record",
    "fingerprint",
    "open_image",
    "open_mask",
    "pixel_mask",
    "read_image_file",
    "read_mask",
    "read_source",
    "read_video",
    "save_image",
    "save_output",
    "save_video",
    "stored_fps",
    "to_rgb",
    "video_record",
]
