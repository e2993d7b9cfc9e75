"""``digits-sd3``: SD3 trained here on 8x8 digits at 32x32, shipped with the package (:mod:`flowedit.train.digits`).

Its pipeline is a real ``StableDiffusion3Pipeline`` with no T5: SD3's ``encode_prompt`` then fills the T5 part with
zeros ``max_sequence_length`` tokens long, and this family asks for :data:`T5_TOKENS` of them (its training did),
so a prompt is 16 CLIP tokens + 1, width 80. Everything else is SD3's (see its row in :mod:`._families`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from ._common import from_pretrained
from ._rows import Code, Text
from ._sd3 import SD3

__all__ = ["DIGITS_SD3", "T5_TOKENS", "WEIGHTS", "is_digits_sd3", "shipped"]

T5_TOKENS = 1
WEIGHTS = Path(__file__).parents[1] / "weights" / "digits_sd3"  # a save_pretrained folder, float16


def _prompt(pipe, prompt: str, device) -> Text:
    """CLIP-L + CLIP-G embeddings and T5_TOKENS zeros (1, 16 + T5_TOKENS, 80), the pooled CLIP vectors (1, 80)."""
    embeds, _, pooled, _ = pipe.encode_prompt(
        prompt=prompt,
        prompt_2=None,
        prompt_3=None,
        device=device,
        do_classifier_free_guidance=False,
        max_sequence_length=T5_TOKENS,
    )
    return Text(embeds, pooled)


DIGITS_SD3 = Code(prompt=_prompt, inputs=SD3.inputs)


def is_digits_sd3(transformer: Mapping, index: Mapping) -> bool:
    """Its transformer reads 80-wide text (the tiny CLIPs, no T5) on at most 16 x 16 patches."""
    return transformer.get("joint_attention_dim") == 80 and transformer.get("pos_embed_max_size") == 16


def shipped(dtype: torch.dtype | None = None, folder: str | Path = WEIGHTS):
    """The pipeline saved in ``folder`` (default: the shipped :data:`WEIGHTS`; offline) in ``dtype`` (default
    float32). It has no T5, which diffusers loads only when told so (``text_encoder_3=None, tokenizer_3=None``)."""
    from diffusers import StableDiffusion3Pipeline

    dtype = dtype or torch.float32
    return from_pretrained(StableDiffusion3Pipeline, str(folder), dtype, text_encoder_3=None, tokenizer_3=None)
