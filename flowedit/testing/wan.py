"""Tiny random-weight ``WanPipeline`` of Wan 2.1 (one transformer) and Wan 2.2 (two experts), built in memory.

See :mod:`flowedit.testing` for the shared tokenizers and the seeding; these are real diffusers and
transformers classes with tiny configs, so every code path of the real pipeline runs.
"""

from __future__ import annotations

from typing import Any

import torch

from .parts import import_models, ready, seeded, t5_encoder, t5_tokenizer

__all__ = ["tiny_wan_pipeline"]

# Wan's VAE statistics for its 16 latent channels; the tiny VAE keeps the first four.
_WAN_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075)
_WAN_STD = (2.8184, 1.4541, 2.3275, 2.6558)
_WAN22_BOUNDARY = 0.875  # Wan 2.2 T2V A14B's boundary_ratio: the high-noise expert owns t >= 0.875
_TEXT_WIDTH = 32


def _transformer(diffusers: Any) -> Any:
    """A 2-block ``WanTransformer3DModel``: 2 heads x 12 (rope 4/4/4 over frames, rows, columns), patch (1, 2, 2).

    Its rotary tables span 1024 positions per axis, as the real model's: every clip the default input limits accept
    fits (257 frames are 65 latent frames; 4096 pixels are 512 token rows). A table's first positions do not depend
    on its length."""
    return diffusers.WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=len(_WAN_MEAN),
        out_channels=len(_WAN_MEAN),
        text_dim=_TEXT_WIDTH,
        freq_dim=32,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # the real model's
    )


def tiny_wan_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32, experts: int = 1, ti2v: bool = False) -> Any:
    """A real ``WanPipeline`` with tiny random weights, built in memory: Wan 2.1's layout, or Wan 2.2's with
    ``experts=2`` (a second transformer, ``transformer_2``, for the low-noise steps and ``boundary_ratio=0.875``,
    Wan 2.2 T2V A14B's), or Wan 2.2 TI2V 5B's with ``ti2v=True`` (one transformer given a timestep per token,
    ``expand_timesteps=True``, and a residual VAE that first folds 2x2 pixels into channels, ``patch_size=2``:
    factor 8 in space here).

    - ``transformer`` (and ``transformer_2``): ``WanTransformer3DModel``, 2 blocks, 2 heads x 12, patch
      ``(1, 2, 2)``, 4 latent channels, ``text_dim=32``, RMS QK normalisation across heads. The two experts
      are drawn one after the other from the same seed, so their weights differ.
    - ``vae``: ``AutoencoderKLWan`` (the causal 3-D VAE), ``base_dim=8``, ``dim_mult=[1, 1, 1]``, both downsamplings
      also in time: factor 4 in space (the real one: 8) and 4 in time (as the real one: ``F = 4k + 1`` frames make
      ``k + 1`` latent frames), 4 latent channels, ``latents_mean`` / ``latents_std`` the first four of Wan's.
    - ``text_encoder``: ``UMT5EncoderModel``, ``d_model=32``, 2 layers; ``tokenizer``: the in-memory T5 tokenizer
      of :mod:`flowedit.testing` (512 tokens; Wan pads every prompt's embeddings to 512 with zeros).
    - ``scheduler``: ``UniPCMultistepScheduler`` with flow sigmas and ``flow_shift=3.0`` (Wan's at 480p).

    Frame sides must be multiples of 8 (VAE factor 4 x patch 2), e.g. 32 x 32. Outputs are meaningless videos
    (random weights); the code paths are the real ones.
    """
    if experts not in (1, 2) or (ti2v and experts != 1):
        raise ValueError(f"experts must be 1 (Wan 2.1, 2.2 TI2V) or 2 (Wan 2.2 A14B), got {experts!r}")
    patchify = dict(is_residual=True, in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=8)
    diffusers, transformers, tokenizers = import_models()
    with seeded(seed):
        tokenizer = t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": _transformer(diffusers),
            "vae": diffusers.AutoencoderKLWan(
                base_dim=8,
                z_dim=len(_WAN_MEAN),
                dim_mult=[1, 1, 1],
                num_res_blocks=1,
                temperal_downsample=[True, True],
                latents_mean=list(_WAN_MEAN),
                latents_std=list(_WAN_STD),
                scale_factor_temporal=4,
                **(patchify if ti2v else {"scale_factor_spatial": 4}),
            ),
            "text_encoder": t5_encoder(transformers, tokenizer, _TEXT_WIDTH, umt5=True),
        }
        if experts == 2:
            modules["transformer_2"] = _transformer(diffusers)
    scheduler = diffusers.UniPCMultistepScheduler(
        num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    return diffusers.WanPipeline(
        scheduler=scheduler,
        tokenizer=tokenizer,
        boundary_ratio=_WAN22_BOUNDARY if experts == 2 else None,
        expand_timesteps=ti2v,
        **ready(modules, dtype),
    )
