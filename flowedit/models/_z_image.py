"""Z-Image: how a prompt is encoded and the transformer called.

Its transformer takes lists: one latent ``(C, 1, h, w)`` and one caption ``(L_i, D)`` of the prompt's own length
per row, and returns a list; the timestep is ``1 - t`` and the output is ``x0 - eps`` (:data:`z_image_timestep`).
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["Z_IMAGE", "z_image_timestep"]

z_image_timestep = Timestep(1.0, reverse=True, float32=True, sign=-1)  # the pipeline: (1000 - timestep) / 1000


def _prompt(pipe, prompt: str, device) -> Text:
    (embeds,) = pipe.encode_prompt(prompt, device=device, do_classifier_free_guidance=False)[0]  # (L, D)
    return Text(embeds[None], None, torch.ones(1, embeds.shape[0], dtype=torch.long, device=embeds.device))


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    """Each row's caption without its padding, ``(L_i, D)``."""
    return {"cap_feats": [e[m.bool()] for e, m in zip(rows.embeds, rows.mask, strict=True)]}


def _call(model, hidden: torch.Tensor, timestep: torch.Tensor, inputs: dict) -> torch.Tensor:
    out = model(list(hidden[:, :, None].unbind(0)), timestep, inputs["cap_feats"], return_dict=False)[0]
    return torch.stack(out)[:, :, 0]  # rows of (C, 1, h, w) -> (rows, C, h, w)


Z_IMAGE = Code(prompt=_prompt, inputs=_inputs, call=_call)
