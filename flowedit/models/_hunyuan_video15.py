"""HunyuanVideo 1.5 (text-to-video): how a prompt is encoded and the transformer called.

A prompt is two streams: Qwen2.5-VL hidden states with their mask, and ByT5 embeddings of its quoted text (zeros
and masked out when it has none). The transformer takes the latents with the image condition's channels (zero
latents and a zero mask for text-to-video) and zero image embeddings, at ``timestep = 1000 t``
(:data:`hunyuan_video15_timestep`).
"""

from __future__ import annotations

import torch

from ._rows import Code, Text, Timestep

__all__ = ["HUNYUAN_VIDEO15", "hunyuan_video15_timestep"]

hunyuan_video15_timestep = Timestep(1000.0)  # the pipeline passes the scheduler's timestep, in the model's dtype


def _prompt(pipe, prompt: str, device) -> Text:
    embeds, mask, embeds_2, mask_2 = pipe.encode_prompt(prompt=prompt, device=device)
    return Text(embeds, None, mask, (embeds_2, mask_2))  # (1, 1000, D), (1, 1000), (1, 256, D2), (1, 256)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    image_embeds = torch.zeros(rows.embeds.shape[0], pipe.vision_num_semantic_tokens, pipe.vision_states_dim)
    return dict(
        encoder_hidden_states=rows.embeds,
        encoder_attention_mask=rows.mask,
        encoder_hidden_states_2=rows.extra[0],
        encoder_attention_mask_2=rows.extra[1],
        image_embeds=image_embeds.to(device, dtype),
    )


def _call(model, hidden: torch.Tensor, timestep: torch.Tensor, inputs: dict) -> torch.Tensor:
    """The latents (rows, C, F', h, w) with the text-to-video condition: C zero channels and a zero mask."""
    condition = hidden.new_zeros(hidden.shape[0], hidden.shape[1] + 1, *hidden.shape[2:])
    return model(hidden_states=torch.cat([hidden, condition], dim=1), timestep=timestep, **inputs, return_dict=False)[0]


HUNYUAN_VIDEO15 = Code(prompt=_prompt, inputs=_inputs, call=_call)
