"""The one adapter: a family's row read into velocities for the shared integrator.

Every family goes through the same mechanics; its :class:`~flowedit.models.Family` row says what differs:

- media -> latents: ``pixels`` (B, 3, [F,] H, W) in [-1, 1] -> the row's normalisation (:mod:`._latents`), float32,
  then its packing; what decoding needs besides the tensor (the :class:`PackedLayout`) travels WITH the latents
  (:class:`Encoded`), never as adapter state.
- prompts -> branches: the row's guidance says which prompts to encode (``[negative, prompt]`` or ``[prompt]``),
  the family's code encodes each.
- one transformer call per step for everything: both branches, both CFG rows, all ``n_avg`` draws stacked
  (:func:`~._common.stack_rows`); the conditioning of a batch layout is built once per velocity (ONE cache); the
  timestep comes from the row's map, the velocity is the output times its sign, combined by its guidance.
- the grid: the pipeline's own scheduler, set as the row's schedule says.
"""

from __future__ import annotations

from typing import Any

import torch

from ._common import Branch, Encoded, check_finite, expand_rows, guided_velocities, stack_rows
from ._families import Family, family_of
from ._rows import Rows, Text

__all__ = ["Adapter"]


class Adapter:
    """Runs one pipeline of one :class:`~flowedit.models.Family` (read from the pipeline when not given)."""

    def __init__(self, pipe, family: Family | None = None):
        self.pipe = pipe
        self.family = family_of(pipe) if family is None else family
        vae = getattr(pipe, "vae_scale_factor_spatial", None) or pipe.vae_scale_factor
        self.vae_factor = vae * self.family.packing.factor(self._first().config)  # pixels per latent token, per side
        self.temporal_factor = getattr(pipe, "vae_scale_factor_temporal", 1)  # frames per latent frame
        self.refresh()

    @property
    def kind(self) -> str:
        """The family's name."""
        return self.family.name

    def _first(self):
        """The transformer that runs first (its config and dtype speak for both of Wan 2.2's experts)."""
        transformer = self.pipe.transformer
        return transformer if transformer is not None else self.pipe.transformer_2

    def refresh(self) -> None:
        """Read the pipeline's device and dtype (each lookup walks every module: done once per edit)."""
        self.device, self.dtype = self.pipe._execution_device, self._first().dtype

    # -- media <-> latents --------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """``pixels`` (B, 3, H, W), or a video (B, 3, F, H, W), in [-1, 1] -> float32 latents and their layout."""
        self.refresh()
        vae = self.pipe.vae
        x = self.family.latents.encode(vae, pixels.to(self.device, vae.dtype))
        check_finite(x, f"the VAE latent of the source {self.family.media}", vae.dtype)
        return Encoded(*self.family.packing.pack(x))

    @torch.no_grad()
    def decode_latents(self, x: torch.Tensor, layout: Any = None) -> torch.Tensor:
        """Latents of ``layout`` (from :meth:`encode_image`) -> pixels (B, 3, [F,] H, W) in [-1, 1]."""
        vae = self.pipe.vae
        pixels = self.family.latents.decode(vae, self.family.packing.unpack(x, layout))
        return check_finite(pixels, f"the decoded {self.family.media}", vae.dtype)

    def timesteps(self, steps: int, x: torch.Tensor) -> torch.Tensor:
        """The pipeline scheduler's sigmas for ``steps`` steps as the row's schedule sets them, plus the final 0:
        float64 (steps + 1,); ``x`` (the latents) gives the token count of a dynamic shift."""
        return self.family.schedule(self.pipe.scheduler, steps, lambda: self.family.packing.tokens(x))

    # -- prompts and velocities ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float, negative_prompt: str | None = None) -> Branch:
        """Encode once per edit: the rows the row's guidance asks for (``[negative, prompt]`` with classifier-free
        guidance on, else ``[prompt]``), zero-padded to the longest where prompts have their own lengths."""
        return self._branch(self.family.guidance.prompts(prompt, guidance, self.pipe, negative_prompt), guidance)

    @torch.no_grad()
    def encode_around(self, prompt: str, negative_prompt: str, scale: float, guidance: float) -> Branch:
        """A branch guided around a negative prompt the paper's way, whatever the family's own guidance: rows
        ``[negative, prompt]`` combined ``v_neg + scale (v - v_neg)`` (FlowAlign's target, the source prompt as its
        negative), one row ``[prompt]`` when ``scale == 1``. Each row is one prompt, unguided where the family's
        guidance is classifier-free; where it is embedded, every row takes ``guidance`` as its scale."""
        prompts = [prompt] if scale == 1 else [negative_prompt, prompt]
        return self._branch(prompts, guidance, None if scale == 1 else scale)

    def _branch(self, prompts: list[str], guidance: float, around: float | None = None) -> Branch:
        texts = [self.family.code.prompt(self.pipe, p, self.device) for p in prompts]
        embeds, pooled, mask, extra = _stack(texts)
        pooled = None if pooled is None else pooled.to(self.dtype)
        extra = tuple(x.to(self.dtype) for x in extra)
        return Branch(embeds.to(self.dtype), pooled, guidance, mask, extra, around)

    def _rows(self, branches: list[Branch], n: list[int]) -> Rows:
        """The conditioning of a call with ``n[i]`` latents of branch ``i`` (each repeated per conditioning row)."""
        embeds, pooled, mask, extra = _stack([Text(b.embeds, b.pooled, b.mask, b.extra) for b in branches])
        sizes = [b.rows for b in branches]
        parts = [t.split(sizes) if t is not None else None for t in (embeds, pooled, mask, *extra)]
        embeds, pooled, mask, *extra = (
            None if p is None else torch.cat([expand_rows(x, k) for x, k in zip(p, n, strict=True)]) for p in parts
        )
        scales = None
        if self.family.guidance.embedded:  # one scale per row, each branch its own
            full = [
                torch.full((k * b.rows,), b.guidance, dtype=torch.float32) for b, k in zip(branches, n, strict=True)
            ]
            scales = torch.cat(full).to(self.device)
        return Rows(embeds, pooled, mask, scales, tuple(extra))

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout: Any = None
    ) -> list[torch.Tensor]:
        """ONE transformer call for every row of every branch; returns each branch's guided velocity (float32)."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        key = tuple(n)
        if key not in cache:
            cache[key] = self.family.code.inputs(self.pipe, self._rows(branches, n), layout, self.device, self.dtype)
        hidden = stack_rows(latents, branches).to(self.device, self.dtype)
        timestep = self.family.timestep.tensor(t, hidden.shape[0], self.device, self.dtype)
        with torch.no_grad():
            out = self.family.code.call(self.family.code.model(self.pipe, t), hidden, timestep, cache[key]).float()
        if self.family.timestep.sign < 0:
            out = -out
        return guided_velocities(out, n, branches, self.family.guidance.combine)

    def velocity_pair(self, source: Branch, target: Branch, layout: Any = None):
        """``(z_src, z_tar, t) -> (v_src, v_tar)`` for ``z`` of shape (n_avg, B, ...): both branches and all
        draws in ONE transformer call per step; ``z_src = None`` evaluates the target alone. ``layout`` is
        the :class:`Encoded` layout of the latents being edited."""
        cache: dict = {}

        def pair(z_src, z_tar, t):
            if z_src is None:
                (v_tar,) = self._forward([z_tar.flatten(0, 1)], [target], t, cache, layout)
                return None, v_tar.reshape(z_tar.shape)
            latents = [z_src.flatten(0, 1), z_tar.flatten(0, 1)]
            v_src, v_tar = self._forward(latents, [source, target], t, cache, layout)
            return v_src.reshape(z_src.shape), v_tar.reshape(z_tar.shape)

        return pair

    def velocity(self, branch: Branch, layout: Any = None):
        """A plain velocity ``v(z, t)`` for one prompt (for inversion and SDEdit), latents of ``layout``."""
        cache: dict = {}
        return lambda z, t: self._forward([z], [branch], t, cache, layout)[0]


def _stack(texts: list[Text]) -> Text:
    """Stack encodings ``(rows_i, L_i, D)`` into one, zero-padded to the longest ``L`` and masked where any has a
    mask (a missing mask is all ones)."""
    pooled = None if texts[0].pooled is None else torch.cat([t.pooled for t in texts])
    extra = tuple(torch.cat(parts) for parts in zip(*(t.extra for t in texts), strict=True))
    if all(t.mask is None for t in texts):
        return Text(torch.cat([t.embeds for t in texts]), pooled, None, extra)
    length = max(t.embeds.shape[1] for t in texts)
    embeds, masks = [], []
    for e, _, m, _ in texts:
        m = torch.ones(e.shape[:2], dtype=torch.long, device=e.device) if m is None else m
        embeds.append(torch.cat([e, e.new_zeros(e.shape[0], length - e.shape[1], e.shape[2])], dim=1))
        masks.append(torch.cat([m, m.new_zeros(m.shape[0], length - m.shape[1])], dim=1))
    return Text(torch.cat(embeds), pooled, torch.cat(masks), extra)
