"""Model families: FlowEdit on diffusers' SD3, SD3.5, FLUX.1, FLUX.2, Qwen-Image and Wan (video) pipelines (``.[models]``).

diffusers, transformers and PIL are imported lazily, only when a pipeline is built or loaded.
"""

from ._editor import DEFAULTS, Editor, EditResult, load
from ._families import FAMILIES, Family
from ._flux import FluxAdapter, PackedLayout, flux_timestep
from ._flux2 import Flux2Adapter
from ._qwen import QwenImageAdapter
from ._sd3 import SD3Adapter, sd3_timestep
from ._settings import EditSettings
from ._video import Clip, read_video, save_video, video_record
from ._wan import WanAdapter, wan_timestep

__all__ = [
    "DEFAULTS",
    "Clip",
    "FAMILIES",
    "Family",
    "EditResult",
    "EditSettings",
    "Editor",
    "Flux2Adapter",
    "FluxAdapter",
    "PackedLayout",
    "QwenImageAdapter",
    "SD3Adapter",
    "WanAdapter",
    "flux_timestep",
    "load",
    "read_video",
    "save_video",
    "sd3_timestep",
    "video_record",
    "wan_timestep",
]
