"""FLUX.1 ([dev], [schnell]): how a prompt is encoded and the transformer called.

Packed latents ``(B, L, 4C)`` with their :class:`~flowedit.models.PackedLayout`, the transformer takes ``t``
itself (:data:`flux_timestep`); [dev]'s guidance scale is an input of the transformer, [schnell] has none.
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["FLUX", "flux_timestep"]

flux_timestep = Timestep(1.0)  # the pipeline passes timestep / 1000 = t


def _prompt(pipe, prompt: str, device) -> Text:
    """T5 embeddings (1, L, D) and the pooled CLIP vector (1, P)."""
    embeds, pooled, _ = pipe.encode_prompt(prompt=prompt, prompt_2=None, device=device)
    return Text(embeds, pooled)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    """Embeddings, pooled vectors, guidance scales, and the (L, 3) position ids of text and image tokens."""
    image_ids = pipe._prepare_latent_image_ids(1, layout.height // 2, layout.width // 2, device, dtype)
    text_ids = torch.zeros(rows.embeds.shape[1], 3, device=device, dtype=dtype)
    return dict(
        encoder_hidden_states=rows.embeds,
        pooled_projections=rows.pooled,
        guidance=rows.scales,
        txt_ids=text_ids,
        img_ids=image_ids,
    )


FLUX = Code(prompt=_prompt, inputs=_inputs)
