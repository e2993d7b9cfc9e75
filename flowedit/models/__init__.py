"""Model families: FlowEdit on diffusers' SD3, SD3.5, FLUX.1, FLUX.2, Qwen-Image, Z-Image, Chroma, Wan and HunyuanVideo 1.5
(video) pipelines (``.[models]``), each a row of :data:`FAMILIES` that the one :class:`Adapter` reads.

diffusers, transformers and PIL are imported lazily, only when a pipeline is built or loaded.
"""

from ..media.video import Clip, read_video, save_video, video_record
from ._adapter import Adapter
from ._editor import DEFAULTS, Editor, EditResult, load
from ._families import FAMILIES, Family
from ._flux import flux_timestep
from ._latents import PackedLayout
from ._sd3 import sd3_timestep
from ._settings import EditSettings
from ._wan import wan_timestep

# One adapter runs every family (its row says what differs); the per-family names of earlier versions remain.
SD3Adapter = FluxAdapter = Flux2Adapter = QwenImageAdapter = WanAdapter = Adapter

__all__ = [
    "Adapter",
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
