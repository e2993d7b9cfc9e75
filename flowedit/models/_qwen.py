"""Qwen-Image: how a prompt is encoded and the transformer called.

Prompts keep their own lengths (Qwen2.5-VL embeddings), so a call's rows are zero-padded to the longest and
masked; the transformer takes ``t`` itself (:data:`qwen_timestep`) and the image's token grid.
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["QWEN_IMAGE", "qwen_timestep"]

qwen_timestep = Timestep(1.0)  # the pipeline passes timestep / 1000 = t


def _prompt(pipe, prompt: str, device) -> Text:
    embeds = pipe.encode_prompt(prompt=prompt, device=device)[0]  # (1, L, D), L the prompt's own
    return Text(embeds, None, torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device))


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    grid = (1, layout.height // 2, layout.width // 2)
    return dict(
        encoder_hidden_states=rows.embeds,
        encoder_hidden_states_mask=rows.mask,
        img_shapes=[[grid]] * rows.embeds.shape[0],
    )


QWEN_IMAGE = Code(prompt=_prompt, inputs=_inputs)
