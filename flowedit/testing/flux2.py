"""Tiny random-weight ``Flux2Pipeline`` (FLUX.2 [dev]) and ``Flux2KleinPipeline``, built in memory; they share their
tiny transformer and VAE."""

from __future__ import annotations

from typing import Any

import torch

from .parts import import_models, qwen3_text_encoder, qwen_tokenizer, ready, seeded

__all__ = ["tiny_flux2_klein_pipeline", "tiny_flux2_pipeline"]


def _flux2_parts(diffusers: Any, text_width: int, guidance_embeds: bool) -> dict[str, Any]:
    """The transformer, VAE and scheduler that FLUX.2 [dev] and [klein] share, tiny (drawn in the caller's seed)."""
    vae = diffusers.AutoencoderKLFlux2(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
    )
    vae.bn.running_mean.copy_(0.3 * torch.randn_like(vae.bn.running_mean))  # a batch norm that is not the identity
    vae.bn.running_var.copy_(torch.rand_like(vae.bn.running_var) + 0.5)
    transformer = diffusers.Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * text_width,
        timestep_guidance_channels=16,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=guidance_embeds,
    )
    return {"transformer": transformer, "vae": vae}


def _flux2_scheduler(diffusers: Any) -> Any:
    return diffusers.FlowMatchEulerDiscreteScheduler(  # the pipelines pass mu: only the shift's form matters
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )


def tiny_flux2_klein_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``Flux2KleinPipeline`` with tiny random weights, built in memory.

    - ``transformer``: ``Flux2Transformer2DModel``, 1 double + 1 single block, 2 heads x 16, ``in_channels=16``
      (4 latent channels patchified 2x2), ``joint_attention_dim=48`` (three stacked text layers of width 16), no
      guidance embedding (FLUX.2 [klein] uses classifier-free guidance).
    - ``vae``: ``AutoencoderKLFlux2``, factor 2, 4 latent channels, its batch norm over the 16 patchified channels
      given random running statistics (so the normalisation is not the identity).
    - ``text_encoder``: ``Qwen3ForCausalLM``, width 16, 27 layers (the pipeline stacks hidden states 9, 18 and
      27); ``tokenizer``: byte-level with Qwen's chat special tokens and a chat template.
    - ``scheduler``: ``FlowMatchEulerDiscreteScheduler`` with dynamic shifting (the pipeline computes ``mu``).

    Image sides must be multiples of 4. Outputs are meaningless images; the code paths are the real ones.
    """
    diffusers, transformers, tokenizers = import_models()
    width = 16
    with seeded(seed):
        modules = _flux2_parts(diffusers, width, False)
        tokenizer, modules["text_encoder"] = qwen3_text_encoder(transformers, tokenizers, width, 27, "Qwen3ForCausalLM")
    return diffusers.Flux2KleinPipeline(
        scheduler=_flux2_scheduler(diffusers), tokenizer=tokenizer, is_distilled=False, **ready(modules, dtype)
    )


_MISTRAL_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}[SYSTEM_PROMPT]{{ m['content'][0]['text'] }}"
    "[/SYSTEM_PROMPT]{% else %}[INST]{{ m['content'][0]['text'] }}[/INST]{% endif %}{% endfor %}"
)


def tiny_flux2_pipeline(seed: int = 0, dtype: torch.dtype = torch.float32) -> Any:
    """A real ``Flux2Pipeline`` (FLUX.2 [dev]) with tiny random weights, built in memory.

    As :func:`tiny_flux2_klein_pipeline`, but guidance distilled (the transformer has a guidance embedding) and
    prompted through ``Mistral3ForConditionalGeneration`` (width 16, 30 layers: the pipeline stacks hidden
    states 10, 20 and 30; a 1-layer Pixtral vision tower it never uses). The real model's ``tokenizer`` is a
    Pixtral processor; here it is a byte-level tokenizer with Mistral's instruction tokens and a chat template
    for the pipeline's system + user messages (the pipeline only calls ``apply_chat_template``, which both have).
    """
    diffusers, transformers, tokenizers = import_models()
    width = 16
    with seeded(seed):
        tokenizer = qwen_tokenizer(transformers, tokenizers)
        tokenizer.add_special_tokens(
            {"additional_special_tokens": ["[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]", "[/INST]", "[IMG]"]}
        )
        tokenizer.chat_template = _MISTRAL_TEMPLATE
        config = transformers.Mistral3Config(
            text_config=dict(
                model_type="mistral",
                vocab_size=len(tokenizer),
                hidden_size=width,
                intermediate_size=32,
                num_hidden_layers=30,
                num_attention_heads=2,
                num_key_value_heads=1,
                head_dim=8,
                max_position_embeddings=1024,
            ),
            vision_config=dict(
                model_type="pixtral",
                hidden_size=16,
                intermediate_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                image_size=64,
                patch_size=16,
                head_dim=8,
            ),
            image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        )
        modules = {
            **_flux2_parts(diffusers, width, True),
            "text_encoder": transformers.Mistral3ForConditionalGeneration(config),
        }
    return diffusers.Flux2Pipeline(scheduler=_flux2_scheduler(diffusers), tokenizer=tokenizer, **ready(modules, dtype))
