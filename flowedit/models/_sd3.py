"""Stable Diffusion 3 (medium, 3.5): what its row cannot say, how a prompt is encoded and the transformer called.

Latents ``(B, C, H/f, W/f)``, classifier-free guidance, ``timestep = 1000 t`` (:data:`sd3_timestep`): see its row
in :mod:`._families`.
"""

from __future__ import annotations

from ._rows import Code, Text, Timestep

__all__ = ["SD3", "sd3_timestep"]

sd3_timestep = Timestep(1000.0, float32=True)  # float32 like the pipeline: its transformer embeds it uncast


def _prompt(pipe, prompt: str, device) -> Text:
    """CLIP-L + CLIP-G + T5 embeddings (1, 77 + L_T5, D) and the pooled CLIP vectors (1, P)."""
    embeds, _, pooled, _ = pipe.encode_prompt(
        prompt=prompt, prompt_2=None, prompt_3=None, device=device, do_classifier_free_guidance=False
    )
    return Text(embeds, pooled)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    return {"encoder_hidden_states": rows.embeds, "pooled_projections": rows.pooled}


SD3 = Code(prompt=_prompt, inputs=_inputs)
