"""Two columns of a family's row: how the VAE's latents are normalised, and how they are packed into tokens.

Normalisation (pixels in [-1, 1] -> float32 latents the transformer was trained on, and back):

- :class:`ScaledVAE`: ``x = (mode - shift_factor) * scaling_factor`` (SD3, FLUX.1, Z-Image, Chroma; HunyuanVideo 1.5's
  VAE has no shift).
- :class:`ChannelStats`: ``x = (mode - latents_mean) / latents_std`` per channel (the causal video VAEs: Wan, and
  Qwen-Image, whose images are one-frame videos).
- :class:`BatchNormStats`: the 2x2-patchified latent normalised by the VAE's batch-norm running statistics (FLUX.2).

Packing (the tensor the integrator moves):

- :class:`NoPacking`: the latent itself, ``(B, C, h, w)`` or ``(B, C, F', h, w)``; the transformer patches it.
- :class:`Tokens2x2`: each 2x2 patch one token, ``(B, L, 4C)``, with its :class:`PackedLayout`.

Every operation here is elementwise or a reshape: the memory layout the VAE hands over is kept where the
pipelines keep it, because noise is drawn with ``randn_like`` (the layout decides the fill order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BatchNormStats", "ChannelStats", "NoPacking", "PackedLayout", "ScaledVAE", "Tokens2x2"]


def _mode(vae, pixels: torch.Tensor) -> torch.Tensor:
    """The VAE posterior's mode of ``pixels`` (already on the VAE's device and dtype), float32."""
    return vae.encode(pixels).latent_dist.mode().float()


def _decode(vae, z: torch.Tensor) -> torch.Tensor:
    return vae.decode(z.to(vae.dtype), return_dict=False)[0].float()


@dataclass(frozen=True)
class ScaledVAE:
    """``x = (mode - shift_factor) * scaling_factor``; ``shift=False``: ``x = mode * scaling_factor`` (a VAE without
    a shift, HunyuanVideo 1.5's)."""

    shift: bool = True

    def _shift(self, config) -> float:
        return config.shift_factor if self.shift else 0.0

    def encode(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` (B, 3, [F,] H, W) -> latents (B, C, [F',] h, w), float32."""
        config = vae.config
        return (_mode(vae, pixels) - self._shift(config)) * config.scaling_factor

    def decode(self, vae, x: torch.Tensor) -> torch.Tensor:
        return _decode(vae, x / vae.config.scaling_factor + self._shift(vae.config))

    def describe(self) -> str:
        return "(mode - shift_factor) * scaling_factor" if self.shift else "mode * scaling_factor"


def latent_statistics(vae, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The causal video VAE's per-channel ``latents_mean`` and ``latents_std``, shaped (1, C, 1, 1, 1), float32."""
    config = vae.config
    mean = torch.tensor(config.latents_mean, dtype=torch.float32, device=device).view(1, -1, 1, 1, 1)
    std = torch.tensor(config.latents_std, dtype=torch.float32, device=device).view(1, -1, 1, 1, 1)
    return mean, std


@dataclass(frozen=True)
class ChannelStats:
    """``x = (mode - latents_mean) / latents_std`` per channel of a causal video VAE; ``one_frame``: images go
    through it as one-frame videos (Qwen-Image), so ``(B, 3, H, W)`` gains and loses a frame axis."""

    one_frame: bool = False

    def encode(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        mode = _mode(vae, pixels[:, :, None] if self.one_frame else pixels)  # (B, C, F', h, w)
        mean, std = latent_statistics(vae, mode.device)
        x = (mode - mean) / std
        return x[:, :, 0] if self.one_frame else x

    def decode(self, vae, x: torch.Tensor) -> torch.Tensor:
        latents = x[:, :, None] if self.one_frame else x
        mean, std = latent_statistics(vae, latents.device)
        pixels = _decode(vae, latents * std + mean)
        return pixels[:, :, 0] if self.one_frame else pixels

    def describe(self) -> str:
        video = "one-frame video of a causal video VAE" if self.one_frame else "(B, C, F', h, w), F = 4 F' - 3 frames"
        return f"(mode - latents_mean) / latents_std per channel ({video})"


@dataclass(frozen=True)
class BatchNormStats:
    """FLUX.2: the latent patchified 2x2 into ``4C`` channels ``(c, i, j)``, each normalised by the VAE's batch
    norm, ``(x - running_mean) / sqrt(running_var + eps)``; done here in place on the ``(B, C, h, w)`` latent."""

    def _statistics(self, vae, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation over the 4C patchified channels as (1, C, 1, 2, 1, 2), float32."""
        mean = vae.bn.running_mean.float().to(device)
        std = torch.sqrt(vae.bn.running_var.float() + vae.config.batch_norm_eps).to(device)
        return mean.view(1, -1, 1, 2, 1, 2), std.view(1, -1, 1, 2, 1, 2)

    def encode(self, vae, pixels: torch.Tensor) -> torch.Tensor:
        mode = _mode(vae, pixels)
        B, C, h, w = mode.shape
        mean, std = self._statistics(vae, mode.device)
        return ((mode.reshape(B, C, h // 2, 2, w // 2, 2) - mean) / std).reshape(B, C, h, w)

    def decode(self, vae, x: torch.Tensor) -> torch.Tensor:
        B, C, h, w = x.shape
        mean, std = self._statistics(vae, x.device)
        return _decode(vae, (x.reshape(B, C, h // 2, 2, w // 2, 2) * std + mean).reshape(B, C, h, w))

    def describe(self) -> str:
        return "2x2 patchified, then (x - bn.running_mean) / bn std per channel"


@dataclass(frozen=True)
class PackedLayout:
    """The unpacked latent shape ``(batch, channels, height, width)`` behind packed latents ``(B, L, 4C)``.

    Packing turns each 2x2 patch of the ``(B, C, h, w)`` latent into one token, ``L = (h / 2)(w / 2)``;
    the token count alone does not say ``h`` and ``w``, which unpacking and the position ids need.
    """

    batch: int
    channels: int
    height: int
    width: int

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(b, C, h, w) -> packed (b, L, 4C): each 2x2 patch a token of features (C, 2, 2); ``b`` may be 1."""
        b, C, h, w = x.shape[0], self.channels, self.height, self.width
        return x.reshape(b, C, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), 4 * C)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """Packed (B, L, 4C) -> (B, C, h, w)."""
        B, C, h, w = self.batch, self.channels, self.height, self.width
        return x.reshape(B, h // 2, w // 2, C, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(B, C, h, w)


@dataclass(frozen=True)
class NoPacking:
    """The latent is what the integrator moves; the transformer patches it itself (``patch`` names how).
    Its channels are axis 1, ``(B, C, [F,] h, w)``."""

    patch: str = "2x2"
    channel_dim = 1

    def pack(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x, None

    def unpack(self, x: torch.Tensor, layout: Any = None) -> torch.Tensor:
        return x

    def factor(self, config) -> int:
        """The transformer's spatial patch size, from its config (``patch_size``, an int or (t, h, w); or Z-Image's
        ``all_patch_size``)."""
        patch = config.get("patch_size") or config.get("all_patch_size")
        return int(patch[-1] if isinstance(patch, list | tuple) else patch)

    def tokens(self, x: torch.Tensor) -> int:
        """The transformer's token count for latents (..., h, w) patched 2x2."""
        return (x.shape[-2] // 2) * (x.shape[-1] // 2)

    def describe(self) -> str:
        return f"none (the transformer patches {self.patch} itself)"


@dataclass(frozen=True)
class Tokens2x2:
    """Each 2x2 patch of the ``(B, C, h, w)`` latent one token, ``(B, L, 4C)``, with its :class:`PackedLayout`.

    ``feature_major``: the tokens are stored feature by feature (strides ``(L 4C, 1, L)``), as FLUX.2's pipeline
    leaves them; noise drawn ``randn_like`` them fills in that order, as the pipeline's does."""

    feature_major: bool = False
    channel_dim = 2  # the features of (B, L, 4C)

    def pack(self, x: torch.Tensor) -> tuple[torch.Tensor, PackedLayout]:
        layout = PackedLayout(*x.shape)
        tokens = layout.pack(x)
        return (tokens.transpose(1, 2).contiguous().transpose(1, 2) if self.feature_major else tokens), layout

    def unpack(self, x: torch.Tensor, layout: Any = None) -> torch.Tensor:
        if not isinstance(layout, PackedLayout):
            raise TypeError(
                f"these latents are packed: pass the PackedLayout that encode_image returned, got {layout!r}"
            )
        return layout.unpack(x)

    def factor(self, config) -> int:
        return 2

    def tokens(self, x: torch.Tensor) -> int:
        return x.shape[1]

    def describe(self) -> str:
        return "2x2 patches into tokens (B, L, 4C)"
