"""Tiny random-weight ``FluxPipeline`` (FLUX.1 [dev]'s layout, or [schnell]'s), built in memory."""

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

__all__ = ["tiny_flux_pipeline"]


def tiny_flux_pipeline(
    seed: int = 0, guidance_embeds: bool = True, dtype: torch.dtype = torch.float32
) -> diffusers.FluxPipeline:
    """A real ``FluxPipeline`` with tiny random weights, built in memory.

    ``guidance_embeds=True`` is FLUX.1-dev-like (guidance distilled: the guidance scale is an input of
    the transformer); ``False`` is FLUX.1-schnell-like (``guidance_scale`` is ignored). Weights are
    drawn with ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``: same seed -> bitwise
    identical weights, global RNG state untouched.

    - ``transformer``: ``FluxTransformer2DModel``, 1 double + 1 single block, 2 heads x 16 = width 32,
      ``axes_dims_rope=(4, 6, 6)`` (sums to the head dim), ``patch_size=1``, ``in_channels=16``
      (4 latent channels packed 2x2), ``joint_attention_dim=32`` (T5 width),
      ``pooled_projection_dim=32`` (CLIP width: FLUX uses ``CLIPTextModel``'s pooled output).
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, ``scaling_factor=0.3611``,
      ``shift_factor=0.1159`` (FLUX's values).
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` with FLUX.1 [dev]'s dynamic shifting
      (``base_shift=0.5``, ``max_shift=1.15``, ``base_image_seq_len=256``, ``max_image_seq_len=4096``);
      schnell-like (``guidance_embeds=False``): ``shift=1``, no dynamic shifting, as FLUX.1 [schnell].
    - ``text_encoder``: ``CLIPTextModel``, width 32, 2 layers; ``text_encoder_2``: ``T5EncoderModel``,
      ``d_model=32``, 2 layers; ``tokenizer`` (CLIP, 77) and ``tokenizer_2`` (T5, 512): see the module doc.

    ``encode_prompt`` gives ``prompt_embeds`` ``(B, max_sequence_length, 32)``, ``pooled_prompt_embeds``
    ``(B, 32)`` and ``text_ids`` ``(max_sequence_length, 3)``. Image sides must be multiples of 4
    (VAE factor 2 x packing 2; e.g. 32, which gives 8 x 8 = 64 packed tokens). Outputs are meaningless
    images (random weights); the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 32
    with seeded(seed):
        tokenizer = clip_tokenizer(transformers, tokenizers)
        tokenizer_2 = t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": diffusers.FluxTransformer2DModel(
                patch_size=1,
                in_channels=4 * LATENT_CHANNELS,
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=width,
                pooled_projection_dim=width,
                guidance_embeds=guidance_embeds,
                axes_dims_rope=(4, 6, 6),
            ),
            "vae": autoencoder_kl(diffusers, scaling_factor=0.3611, shift_factor=0.1159),
            "text_encoder": transformers.CLIPTextModel(clip_config(transformers, tokenizer, width, "quick_gelu")),
            "text_encoder_2": t5_encoder(transformers, tokenizer_2, width),
        }
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(  # schnell: no shift at all, as its scheduler config
        num_train_timesteps=1000,
        shift=3.0 if guidance_embeds else 1.0,
        use_dynamic_shifting=guidance_embeds,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler, tokenizer=tokenizer, tokenizer_2=tokenizer_2, **ready(modules, dtype)
    )
