"""Wan 2.1 and Wan 2.2 (text-to-video): how a prompt is encoded, and which expert a step calls.

Latents ``(B, C, F', h, w)``, ``F' = (F - 1) / 4 + 1`` for ``F = 4k + 1`` frames; FlowEdit needs nothing else from
a video: the integrator moves this tensor exactly as it moves 2-D points. Every prompt's embeddings are
zero-padded to 512 tokens (as ``WanPipeline``), so rows stack without a mask; ``timestep = 1000 t``
(:data:`wan_timestep`; the scheduler hands the pipeline these rounded down to integers, here the exact value).

Wan 2.2 TI2V 5B (``expand_timesteps``) is given one timestep per token by its pipeline; for text-to-video they
are all the step's, which the transformer computes the same way from one timestep per row, as here. Wan 2.2's
A14B models have two experts: ``transformer`` for the high-noise steps and ``transformer_2`` for the low-noise
ones, switched where ``1000 t`` falls below ``boundary_ratio * num_train_timesteps`` (the pipeline's rule); each
step's one call goes to the expert that owns its ``t``, with the branch's guidance scale for both.
"""

from __future__ import annotations

from ._rows import Code, Text, Timestep

__all__ = ["WAN", "expert_boundary", "wan_timestep"]

TEXT_TOKENS = 512  # WanPipeline's max_sequence_length: embeddings are zero-padded to it
wan_timestep = Timestep(1000.0, float32=True)


def expert_boundary(boundary_ratio, transformer_2) -> float | None:
    """Wan 2.2's switch point: ``boundary_ratio`` when the pipeline has a second expert (``transformer_2``: a
    module, or its entry in ``model_index.json``) and a ratio; None for one transformer (Wan 2.1, 2.2 TI2V)."""
    return None if boundary_ratio is None or not transformer_2 else float(boundary_ratio)


def _prompt(pipe, prompt: str, device) -> Text:
    embeds, _ = pipe.encode_prompt(
        prompt=prompt, do_classifier_free_guidance=False, max_sequence_length=TEXT_TOKENS, device=device
    )
    return Text(embeds)  # (1, 512, D)


def _inputs(pipe, rows, layout, device, dtype) -> dict:
    return {"encoder_hidden_states": rows.embeds}


def _expert(pipe, t: float):
    """``transformer`` for Wan 2.1 and for ``1000 t >= boundary_ratio * num_train_timesteps``, else
    ``transformer_2`` (WanPipeline's rule)."""
    boundary = expert_boundary(pipe.config.get("boundary_ratio"), pipe.transformer_2 is not None)
    if boundary is None:
        return pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    threshold = boundary * pipe.scheduler.config.num_train_timesteps
    return pipe.transformer if wan_timestep(t) >= threshold else pipe.transformer_2


WAN = Code(prompt=_prompt, inputs=_inputs, model=_expert)
