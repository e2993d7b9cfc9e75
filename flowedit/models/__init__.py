"""Model adapters: FlowEdit on diffusers' Stable Diffusion 3 and FLUX.1 pipelines (``pip install .[models]``).

diffusers, transformers and PIL are imported lazily, only when a pipeline is built or loaded.
"""

from ._editor import DEFAULTS, Editor, EditResult, load
from ._families import FAMILIES, Family
from ._flux import FluxAdapter, PackedLayout, flux_timestep
from ._flux2 import Flux2KleinAdapter
from ._qwen import QwenImageAdapter
from ._sd3 import SD3Adapter, sd3_timestep
from ._settings import EditSettings

__all__ = [
    "DEFAULTS",
    "FAMILIES",
    "Family",
    "EditResult",
    "EditSettings",
    "Editor",
    "Flux2KleinAdapter",
    "FluxAdapter",
    "PackedLayout",
    "QwenImageAdapter",
    "SD3Adapter",
    "flux_timestep",
    "load",
    "sd3_timestep",
]
