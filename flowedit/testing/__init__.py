"""Tiny random-weight pipelines of every model family, built in memory from configs (no download, no files).

One module per family (:mod:`.sd3`, :mod:`.flux`, :mod:`.flux2`, :mod:`.qwen_image`, :mod:`.wan`, :mod:`.z_image`,
:mod:`.chroma`, :mod:`.hunyuan_video15`) on the shared
parts of :mod:`.parts` (tokenizers, small text encoders and VAEs, seeding); each family's row names its builder
(``Family.tiny``), and ``flowedit.load("tiny-<family>")`` builds it.

Every builder returns a *real* diffusers pipeline whose every component is a real class with a tiny config. The
weights are random, so the images they make are meaningless noise, but every code path of the real pipelines
runs (prompt encoding, padding, guidance, packing, dynamic shifting, VAE normalisation and decoding), and
``save_pretrained`` / ``from_pretrained`` round-trip them. A reloaded pipeline has bitwise-equal weights but its
outputs agree only to float32 rounding (~1e-6): safetensors maps tensors at unaligned addresses, and CPU
matmuls then round differently.

Only torch is imported at module level; diffusers, transformers and tokenizers are imported inside the
builders (the ``models`` extra).
"""

from .chroma import tiny_chroma_pipeline
from .flux import tiny_flux_pipeline
from .flux2 import tiny_flux2_klein_pipeline, tiny_flux2_pipeline
from .hunyuan_video15 import tiny_hunyuan_video15_pipeline
from .qwen_image import tiny_qwen_image_pipeline
from .sd3 import tiny_sd3_pipeline
from .wan import tiny_wan_pipeline
from .z_image import tiny_z_image_pipeline

__all__ = [
    "tiny_chroma_pipeline",
    "tiny_flux2_klein_pipeline",
    "tiny_flux2_pipeline",
    "tiny_flux_pipeline",
    "tiny_hunyuan_video15_pipeline",
    "tiny_qwen_image_pipeline",
    "tiny_sd3_pipeline",
    "tiny_wan_pipeline",
    "tiny_z_image_pipeline",
]
