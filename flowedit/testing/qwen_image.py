"""Tiny random-weight ``QwenImagePipeline``, built in memory."""

from __future__ import annotations

from typing import Any

import torch

from .parts import import_models, qwen_tokenizer, ready, seeded

__all__ = ["tiny_qwen_image_pipeline"]

# Qwen-Image's VAE statistics for its 16 latent channels; the tiny VAE keeps the first four.
_QWEN_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075)
_QWEN_STD = (2.8184, 1.4541, 2.3275, 2.6558)


def tiny_qwen_image_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``QwenImagePipeline`` with tiny random weights, built in memory.

    - ``transformer``: ``QwenImageTransformer2DModel``, 2 blocks, 2 heads x 16, ``patch_size=2``,
      ``in_channels=16`` (4 latent channels packed 2x2), ``joint_attention_dim=32``, no guidance embedding.
    - ``vae``: ``AutoencoderKLQwenImage`` (the causal video VAE, one frame), factor 2, 4 latent channels,
      ``latents_mean`` / ``latents_std`` the first four of Qwen-Image's.
    - ``text_encoder``: ``Qwen2_5_VLForConditionalGeneration``, width 32, 2 layers (a 1-block vision tower
      it never uses); ``tokenizer``: byte-level, Qwen2's chat special tokens.
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` with Qwen-Image's dynamic exponential shift
      (``base_shift=0.5``, ``max_shift=0.9``, ``max_image_seq_len=8192``, ``shift_terminal=0.02``).

    Image sides must be multiples of 4. Outputs are meaningless images; the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 32
    with seeded(seed):
        tokenizer = qwen_tokenizer(transformers, tokenizers)
        config = transformers.Qwen2_5_VLConfig(
            text_config=dict(
                vocab_size=len(tokenizer),
                hidden_size=width,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=2048,
                rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
                bos_token_id=None,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            ),
            vision_config=dict(
                depth=1,
                hidden_size=16,
                intermediate_size=32,
                num_heads=2,
                out_hidden_size=width,
                fullatt_block_indexes=[0],
            ),
        )
        modules = {
            "transformer": diffusers.QwenImageTransformer2DModel(
                patch_size=2,
                in_channels=16,
                out_channels=4,
                num_layers=2,
                attention_head_dim=16,
                num_attention_heads=2,
                joint_attention_dim=width,
                axes_dims_rope=(4, 6, 6),
            ),
            "vae": diffusers.AutoencoderKLQwenImage(
                base_dim=8,
                z_dim=4,
                dim_mult=[1, 2],
                num_res_blocks=1,
                temperal_downsample=[False],
                latents_mean=list(_QWEN_MEAN),
                latents_std=list(_QWEN_STD),
            ),
            "text_encoder": transformers.Qwen2_5_VLForConditionalGeneration(config),
        }
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=0.9,
        base_image_seq_len=256,
        max_image_seq_len=8192,
        shift_terminal=0.02,
        time_shift_type="exponential",
    )
    return diffusers.QwenImagePipeline(scheduler=scheduler, tokenizer=tokenizer, **ready(modules, dtype))
