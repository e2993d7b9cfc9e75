"""FLUX.2 ([dev], [klein]): how a prompt is encoded and the transformer called.

The prompt is the text encoder's hidden states of three layers, stacked, at a fixed length (Mistral 3 for [dev],
Qwen3 for [klein]); latents are batch-norm normalised 2x2 tokens (FLUX.1's token layout, stored feature-major as
the pipeline leaves them); the transformer takes ``t`` itself (:data:`flux2_timestep`).
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["FLUX2", "flux2_timestep"]

flux2_timestep = Timestep(1.0)  # the pipeline passes timestep / 1000 = t


def _prompt(pipe, prompt: str, device) -> Text:
    return Text(pipe.encode_prompt(prompt=prompt, device=device)[0])  # (1, 512, 3D)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    """Embeddings, guidance scales ([dev]) and the per-row position ids of text and image tokens."""
    count = rows.embeds.shape[0]
    text_ids = pipe._prepare_text_ids(rows.embeds[:1]).to(device).expand(count, -1, -1)
    grid = torch.empty(1, 1, layout.height // 2, layout.width // 2)
    image_ids = pipe._prepare_latent_ids(grid).to(device).expand(count, -1, -1)
    return dict(encoder_hidden_states=rows.embeds, img_ids=image_ids, txt_ids=text_ids, guidance=rows.scales)


FLUX2 = Code(prompt=_prompt, inputs=_inputs)
