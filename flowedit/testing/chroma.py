"""Tiny random-weight ``ChromaPipeline``, built in memory."""

from __future__ import annotations

from typing import Any

import torch

from .parts import LATENT_CHANNELS, autoencoder_kl, import_models, ready, seeded, t5_encoder, t5_tokenizer

__all__ = ["tiny_chroma_pipeline"]


def tiny_chroma_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``ChromaPipeline`` with tiny random weights, built in memory.

    - ``transformer``: ``ChromaTransformer2DModel``, 1 double + 1 single block, 2 heads x 16, ``in_channels=16``
      (4 latent channels packed 2x2), ``joint_attention_dim=32`` (the T5 width), rope 4/6/6, a 1-layer
      modulation approximator of width 32 over 16 channels.
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, FLUX.1's ``scaling_factor`` / ``shift_factor``.
    - ``text_encoder``: ``T5EncoderModel``, ``d_model=32``, 2 layers; ``tokenizer``: the in-memory T5 tokenizer
      (Chroma masks every padding token but the first).
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` with FLUX.1's dynamic shifting.

    Image sides must be multiples of 4 (VAE factor 2 x packing 2). Outputs are meaningless images; the code paths
    are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 32
    with seeded(seed):
        tokenizer = t5_tokenizer(transformers, tokenizers)
        modules = {
            "transformer": diffusers.ChromaTransformer2DModel(
                patch_size=1,
                in_channels=4 * LATENT_CHANNELS,
                num_layers=1,
                num_single_layers=1,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=width,
                axes_dims_rope=(4, 6, 6),
                approximator_num_channels=16,
                approximator_hidden_dim=32,
                approximator_layers=1,
            ),
            "vae": autoencoder_kl(diffusers, scaling_factor=0.3611, shift_factor=0.1159),
            "text_encoder": t5_encoder(transformers, tokenizer, width),
        }
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.ChromaPipeline(scheduler=scheduler, tokenizer=tokenizer, **ready(modules, dtype))
