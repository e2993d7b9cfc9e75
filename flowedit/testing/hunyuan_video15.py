"""Tiny random-weight ``HunyuanVideo15Pipeline`` (text-to-video), built in memory."""

from __future__ import annotations

from typing import Any

import torch

from .parts import QWEN3_CHAT_TEMPLATE, import_models, qwen_tokenizer, ready, seeded

__all__ = ["tiny_hunyuan_video15_pipeline"]

LATENT_CHANNELS = 4


def tiny_hunyuan_video15_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``HunyuanVideo15Pipeline`` with tiny random weights, built in memory.

    - ``transformer``: ``HunyuanVideo15Transformer3DModel``, 1 block + 1 refiner block, 2 heads x 16, patch 1,
      ``in_channels=9`` (4 latent channels, 4 of the image condition and its mask, zeros for text-to-video),
      text widths 16 (both encoders), image width 16, rope 4/6/6 over (frames, rows, columns).
    - ``vae``: ``AutoencoderKLHunyuanVideo15``, factor 4 in space and 4 in time (``F = 4k + 1`` frames make
      ``k + 1`` latent frames), 4 latent channels, its ``scaling_factor``.
    - ``text_encoder``: ``Qwen2_5_VLTextModel``, width 16, 3 layers (the pipeline reads the third to last hidden
      states); ``tokenizer``: byte-level with Qwen's chat tokens and a chat template for its system message.
      ``text_encoder_2``: ``T5EncoderModel`` of width 16 for ByT5's bytes (read only for quoted text);
      ``tokenizer_2``: transformers' ``ByT5Tokenizer``.
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=5.0)``; ``guider``: ``ClassifierFreeGuidance``.

    Frame sides must be multiples of 4. Outputs are meaningless videos; the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 16
    with seeded(seed):
        tokenizer = qwen_tokenizer(transformers, tokenizers)
        tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
        tokenizer_2 = transformers.ByT5Tokenizer()
        text_config = transformers.Qwen2_5_VLTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=2048,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
        byt5_config = transformers.T5Config(
            vocab_size=len(tokenizer_2),
            d_model=width,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            dropout_rate=0.0,
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
        modules = {
            "transformer": diffusers.HunyuanVideo15Transformer3DModel(
                in_channels=2 * LATENT_CHANNELS + 1,
                out_channels=LATENT_CHANNELS,
                num_attention_heads=2,
                attention_head_dim=16,
                num_layers=1,
                num_refiner_layers=1,
                text_embed_dim=width,
                text_embed_2_dim=width,
                image_embed_dim=width,
                rope_axes_dim=(4, 6, 6),
                task_type="t2v",
            ),
            "vae": diffusers.AutoencoderKLHunyuanVideo15(
                latent_channels=LATENT_CHANNELS,
                block_out_channels=(16, 16, 16),
                layers_per_block=1,
                spatial_compression_ratio=4,
                temporal_compression_ratio=4,
            ),
            "text_encoder": transformers.Qwen2_5_VLTextModel(text_config),
            "text_encoder_2": transformers.T5EncoderModel(byt5_config),
        }
    return diffusers.HunyuanVideo15Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
        **ready(modules, dtype),
    )
