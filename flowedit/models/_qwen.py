"""Qwen-Image as velocities for the shared integrator.

Latents are the causal video VAE's, one frame, normalised per channel, ``(mode - latents_mean) /
latents_std``, then packed 2x2 into tokens like FLUX's, shape ``(B, L, 4C)``, float32. Guidance is "true"
classifier-free guidance: the negative prompt's velocity ``v_neg`` and the prompt's ``v`` come from separate
rows, ``c = v_neg + w (v - v_neg)``, rescaled per token to the prompt's norm, ``c * |v| / |c|`` (as
diffusers' ``QwenImagePipeline``). The transformer takes ``t`` itself; the grid shifts by ``mu(L)``
exponentially and is stretched to end at ``shift_terminal``, as the pipeline's scheduler does.
"""

from __future__ import annotations

import torch

from ._common import Branch, Encoded, check_finite, expand_rows, guided_velocities, latent_statistics, stack_rows
from ._flux import FluxAdapter, PackedLayout

__all__ = ["QwenImageAdapter", "qwen_timestep"]

NEGATIVE_PROMPT = " "  # Qwen-Image's own examples enable true CFG with a blank negative prompt


def qwen_timestep(t: float) -> float:
    """Qwen-Image's transformer takes the sigma ``t`` itself (the pipeline passes ``timestep / 1000``)."""
    return t


class QwenImageAdapter(FluxAdapter):
    """Wraps a ``diffusers.QwenImagePipeline``: per-channel normalised packed latents, true CFG, one call per step.

    The grid and the packed layout are FLUX's (:class:`~flowedit.models.PackedLayout`); prompts have their own
    lengths, so a step's rows are padded to the longest and masked.
    """

    kind = "qwen-image"

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> packed float32 latents (B, L, 4C) and their :class:`PackedLayout`."""
        self.refresh()
        vae = self.pipe.vae
        frames = pixels.to(self.device, vae.dtype)[:, :, None]  # (B, 3, 1, H, W): a one-frame video
        mode = vae.encode(frames).latent_dist.mode().float()  # (B, C, 1, h, w)
        mean, std = latent_statistics(vae, mode.device)
        x = check_finite(((mode - mean) / std)[:, :, 0], "the VAE latent of the source image", vae.dtype)
        return Encoded(self.pipe._pack_latents(x, *x.shape), PackedLayout(*x.shape))

    @torch.no_grad()
    def decode_latents(self, x: torch.Tensor, layout=None) -> torch.Tensor:
        """Packed latents (B, L, 4C) of ``layout`` -> pixels (B, 3, H, W) in [-1, 1]."""
        vae = self.pipe.vae
        latents = self._layout(layout).unpack(x)[:, :, None]  # (B, C, 1, h, w)
        mean, std = latent_statistics(vae, latents.device)
        pixels = vae.decode((latents * std + mean).to(vae.dtype), return_dict=False)[0][:, :, 0].float()
        return check_finite(pixels, "the decoded image", vae.dtype)

    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float) -> Branch:
        """Qwen2.5-VL embeddings of the prompt's own length; with ``guidance > 1`` the rows are ``[negative,
        prompt]`` (padded to the longer, masked), else ``[prompt]``."""
        prompts = [NEGATIVE_PROMPT, prompt] if guidance > 1 else [prompt]
        encoded = [self.pipe.encode_prompt(prompt=p, device=self.device)[0] for p in prompts]  # each (1, L_i, D)
        return _padded(encoded, guidance)

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout=None
    ) -> list[torch.Tensor]:
        """One transformer call for every row of every branch; returns each branch's guided velocity (float32)."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        if "conditioning" not in cache or cache["conditioning"][0] != n:
            shape = self._layout(layout)
            merged = _padded([b.embeds for b in branches], 0.0, [b.mask for b in branches])
            splits = merged.embeds.split([b.rows for b in branches]), merged.mask.split([b.rows for b in branches])
            embeds = torch.cat([expand_rows(e, k) for e, k in zip(splits[0], n, strict=True)])
            mask = torch.cat([expand_rows(m, k) for m, k in zip(splits[1], n, strict=True)])
            cache["conditioning"] = (n, embeds, mask, (1, shape.height // 2, shape.width // 2))
        _, embeds, mask, grid = cache["conditioning"]
        hidden = stack_rows(latents, branches)
        timestep = torch.full((hidden.shape[0],), qwen_timestep(t), device=self.device, dtype=self.dtype)
        with torch.no_grad():
            out = self.pipe.transformer(
                hidden_states=hidden.to(self.device, self.dtype),
                encoder_hidden_states=embeds,
                encoder_hidden_states_mask=mask,
                timestep=timestep,
                img_shapes=[[grid]] * hidden.shape[0],
                return_dict=False,
            )[0].float()
        return guided_velocities(out, n, branches, true_cfg)


def true_cfg(negative: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
    """``c = v_neg + w (v - v_neg)``, rescaled per token to the conditional velocity's norm (QwenImagePipeline)."""
    combined = negative + scale * (conditional - negative)
    return combined * (conditional.norm(dim=-1, keepdim=True) / combined.norm(dim=-1, keepdim=True))


def _padded(embeds: list[torch.Tensor], guidance: float, masks: list[torch.Tensor | None] | None = None) -> Branch:
    """Stack embeddings ``(rows_i, L_i, D)`` into one branch, zero-padded to the longest ``L`` and masked."""
    length = max(e.shape[1] for e in embeds)
    masks = masks or [None] * len(embeds)
    rows, mask_rows = [], []
    for e, m in zip(embeds, masks, strict=True):
        m = torch.ones(e.shape[:2], dtype=torch.long, device=e.device) if m is None else m
        rows.append(torch.cat([e, e.new_zeros(e.shape[0], length - e.shape[1], e.shape[2])], dim=1))
        mask_rows.append(torch.cat([m, m.new_zeros(m.shape[0], length - m.shape[1])], dim=1))
    return Branch(torch.cat(rows), None, guidance, torch.cat(mask_rows))
