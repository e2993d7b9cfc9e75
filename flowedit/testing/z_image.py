"""Tiny random-weight ``ZImagePipeline``, built in memory."""

from __future__ import annotations

from typing import Any

import torch

from .parts import autoencoder_kl, import_models, qwen3_text_encoder, ready, seeded

__all__ = ["tiny_z_image_pipeline"]


def tiny_z_image_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``ZImagePipeline`` with tiny random weights, built in memory.

    - ``transformer``: ``ZImageTransformer2DModel``, 1 main + 1 refiner layer of each kind, 2 heads x 16,
      ``all_patch_size=(2,)``, 4 latent channels, ``cap_feat_dim=16`` (the text width), rope axes 4/6/6 over
      (caption or frame, rows, columns) with Z-Image's table lengths (1024, 512, 512).
    - ``vae``: ``AutoencoderKL``, factor 2, 4 latent channels, ``scaling_factor=0.3611``, ``shift_factor=0.1159``
      (the FLUX.1 VAE's values, which Z-Image uses).
    - ``text_encoder``: ``Qwen3Model``, width 16, 2 layers (the pipeline reads the second to last hidden states);
      ``tokenizer``: byte-level with Qwen's chat special tokens and a chat template.
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=3.0)``, static (Z-Image-Turbo's).

    Image sides must be multiples of 4 (VAE factor 2 x patch 2). Outputs are meaningless images; the code paths
    are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 16
    with seeded(seed):
        modules = {
            "transformer": diffusers.ZImageTransformer2DModel(
                all_patch_size=(2,),
                all_f_patch_size=(1,),
                in_channels=4,
                dim=32,
                n_layers=1,
                n_refiner_layers=1,
                n_heads=2,
                n_kv_heads=2,
                cap_feat_dim=width,
                axes_dims=[4, 6, 6],
                axes_lens=[1024, 512, 512],
            ),
            "vae": autoencoder_kl(diffusers, scaling_factor=0.3611, shift_factor=0.1159),
        }
        tokenizer, modules["text_encoder"] = qwen3_text_encoder(transformers, tokenizers, width, 2, "Qwen3Model")
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return diffusers.ZImagePipeline(scheduler=scheduler, tokenizer=tokenizer, **ready(modules, dtype))
