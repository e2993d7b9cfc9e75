"""Tiny random-weight ``StableDiffusion3Pipeline`` (SD3.0's layout, or SD3.5 medium's), built in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .parts import (
    LATENT_CHANNELS,
    autoencoder_kl,
    clip_config,
    clip_tokenizer,
    import_models,
    ready,
    seeded,
    t5_encoder,
    t5_tokenizer,
)

if TYPE_CHECKING:
    import diffusers

__all__ = ["tiny_sd3_pipeline"]


def tiny_sd3_pipeline(
    seed: int = 0, dtype: torch.dtype = torch.float32, sd35: bool = False
) -> diffusers.StableDiffusion3Pipeline:
    """A real ``StableDiffusion3Pipeline`` (SD3.0 layout, or SD3.5 medium's with ``sd35=True``) with tiny random
    weights, built in memory.

    Components (weights drawn with ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``, so the
    same seed gives bitwise-identical weights and the global RNG state is left untouched):

    - ``transformer``: ``SD3Transformer2DModel``, 2 joint blocks (the last one context-pre-only, as in
      SD3), 4 heads x 8 = width 32, ``patch_size=2``, ``in/out_channels=4``, ``sample_size=32``,
      ``joint_attention_dim=128`` (T5 width), ``caption_projection_dim=32``, ``pooled_projection_dim=80``.
      With ``sd35=True``, SD3.5 medium's two additions: RMS normalisation of queries and keys
      (``qk_norm="rms_norm"``) and a dual-attention first block (``dual_attention_layers=(0,)``).
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, ``scaling_factor=1.5305``,
      ``shift_factor=0.0609`` (SD3's values).
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=3.0)``.
    - ``text_encoder`` / ``text_encoder_2``: ``CLIPTextModelWithProjection``, widths 32 and 48 (like
      CLIP-L / CLIP-G, projection = width), 2 layers; pooled embeddings concatenate to 80 = 32 + 48.
    - ``text_encoder_3``: ``T5EncoderModel``, ``d_model=128``, 2 layers; the 80-wide CLIP token
      embeddings are zero-padded to 128 as in SD3 (2048 -> 4096 there).
    - ``tokenizer`` / ``tokenizer_2`` (CLIP, 77 tokens) and ``tokenizer_3`` (T5, 512): see the module doc.

    ``encode_prompt`` gives ``prompt_embeds`` of shape ``(B, 77 + max_sequence_length, 128)`` and
    ``pooled_prompt_embeds`` of shape ``(B, 80)``. Use image sides that are multiples of 4 (e.g. 32);
    the default is 64. Outputs are meaningless images (random weights); the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    clip_widths, t5_width = (32, 48), 128
    with seeded(seed):
        tokenizer = clip_tokenizer(transformers, tokenizers)
        tokenizer_2 = clip_tokenizer(transformers, tokenizers)
        tokenizer_3 = t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": diffusers.SD3Transformer2DModel(
                sample_size=32,
                patch_size=2,
                in_channels=LATENT_CHANNELS,
                num_layers=2,
                attention_head_dim=8,
                num_attention_heads=4,
                joint_attention_dim=t5_width,
                caption_projection_dim=32,  # must equal the width, heads x head dim
                pooled_projection_dim=sum(clip_widths),
                out_channels=LATENT_CHANNELS,
                **({"qk_norm": "rms_norm", "dual_attention_layers": (0,)} if sd35 else {}),
            ),
            "vae": autoencoder_kl(diffusers, scaling_factor=1.5305, shift_factor=0.0609),
            "text_encoder": transformers.CLIPTextModelWithProjection(
                clip_config(transformers, tokenizer, clip_widths[0], "quick_gelu")
            ),
            "text_encoder_2": transformers.CLIPTextModelWithProjection(
                clip_config(transformers, tokenizer, clip_widths[1], "gelu")
            ),
            "text_encoder_3": t5_encoder(transformers, tokenizer_3, t5_width),
        }
    return diffusers.StableDiffusion3Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        tokenizer_3=tokenizer_3,
        **ready(modules, dtype),
    )
