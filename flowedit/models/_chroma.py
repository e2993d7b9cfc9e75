"""Chroma: how a prompt is encoded and the transformer called.

FLUX.1's packed latents and position ids, with a T5 prompt whose padding is masked (all but its first padding
token); classifier-free guidance with a negative prompt; the transformer takes ``t`` itself (:data:`chroma_timestep`).
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["CHROMA", "chroma_timestep"]

chroma_timestep = Timestep(1.0)  # the pipeline passes timestep / 1000 = t


def _prompt(pipe, prompt: str, device) -> Text:
    embeds, _, mask, *_ = pipe.encode_prompt(prompt=prompt, device=device, do_classifier_free_guidance=False)
    return Text(embeds, None, mask)  # (1, 512, D), (1, 512)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    """Embeddings, the text mask extended over the image tokens, and the (L, 3) position ids."""
    rows_, tokens = rows.embeds.shape[0], (layout.height // 2) * (layout.width // 2)
    return dict(
        encoder_hidden_states=rows.embeds,
        txt_ids=torch.zeros(rows.embeds.shape[1], 3, device=device, dtype=dtype),
        img_ids=pipe._prepare_latent_image_ids(1, layout.height // 2, layout.width // 2, device, dtype),
        attention_mask=pipe._prepare_attention_mask(rows_, tokens, dtype, rows.mask),
    )


CHROMA = Code(prompt=_prompt, inputs=_inputs)
