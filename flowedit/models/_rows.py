"""The other columns of a family's row: timestep map and output sign, sigma schedule, guidance, and the few lines
of code that truly differ between families (how a prompt is encoded, how the transformer is called).

Each part is a small frozen object that the adapter reads and ``flowedit models`` describes (``describe()``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from .._grid import flux_mu
from ._common import classifier_free

__all__ = ["CFG", "Code", "Embedded", "Rows", "Sigmas", "Text", "Timestep", "Unguided"]


# -- timestep map and output sign -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Timestep:
    """The one place a family converts the sigma ``t`` (0 = data, 1 = noise) to its transformer's timestep:
    ``scale * t``, or ``scale * (1 - t)`` when ``reverse``; ``float32``: passed as float32 whatever the model's dtype
    (as SD3's and Wan's pipelines do), else in the model's dtype. The velocity ``eps - x0`` is ``sign`` times the
    transformer's output (Z-Image predicts ``x0 - eps``: sign -1). ``note`` says which module takes it, where
    that depends on ``t``."""

    scale: float = 1.0
    reverse: bool = False
    float32: bool = False
    sign: int = 1
    note: str = ""

    def __call__(self, t: float) -> float:
        return self.scale * ((1.0 - t) if self.reverse else t)

    def replace(self, **changes) -> Timestep:
        return dataclasses.replace(self, **changes)

    def tensor(self, t: float, rows: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """``(rows,)`` copies of the timestep of ``t``."""
        return torch.full((rows,), self(t), device=device, dtype=torch.float32 if self.float32 else dtype)

    def describe(self) -> str:
        scale = "" if self.scale == 1 else f"{self.scale:g} "
        text = f"{scale}(1 - t)" if self.reverse and scale else ("1 - t" if self.reverse else f"{scale}t")
        text += "; the velocity is minus the output" if self.sign < 0 else ""
        return text + (f", {self.note}" if self.note else "")


# -- sigma schedule -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sigmas:
    """The grid ``1 = t_0 > ... > t_T = 0`` from the pipeline's own scheduler, set as its ``__call__`` sets it.

    ``base``: ``"scheduler"`` (``set_timesteps(steps)``: the scheduler's own spacing and static shift),
    ``"linspace"`` (``sigmas = linspace(1, 1/T, T)`` in float64, FLUX's), ``"linspace32"`` (the same in float32,
    Z-Image's) or ``"to0"`` (``linspace(1, 0, T + 1)[:-1]``, HunyuanVideo 1.5's). ``mu``: the dynamic shift,
    ``None``, ``"linear"`` (``mu(L)`` linear in the token count, from the scheduler's config) or ``"empirical"``
    (FLUX.2's ``mu(L, T)``). ``note`` says what the static shift of the real checkpoints is.
    """

    base: str = "scheduler"
    mu: str | None = None
    note: str = ""

    def __call__(self, scheduler, steps: int, tokens: Callable[[], int]) -> torch.Tensor:
        """The sigmas plus the final 0, float64 ``(steps + 1,)``; ``tokens()`` is the latent's token count ``L``."""
        if self.base == "scheduler":
            scheduler.set_timesteps(steps, device="cpu")
            return scheduler.sigmas.double()
        sigmas = {
            "linspace": lambda: np.linspace(1.0, 1 / steps, steps),
            "linspace32": lambda: torch.linspace(1.0, 1 / steps, steps).tolist(),
            "to0": lambda: np.linspace(1.0, 0.0, steps + 1)[:-1],
        }[self.base]()
        shift = {} if self.mu is None else {"mu": self._mu(scheduler.config, tokens(), steps)}
        scheduler.set_timesteps(sigmas=sigmas, device="cpu", **shift)
        return scheduler.sigmas.double()

    def _mu(self, config, length: int, steps: int) -> float:
        if self.mu == "empirical":
            from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

            return compute_empirical_mu(image_seq_len=length, num_steps=steps)
        return flux_mu(
            length,
            base_seq_len=config.get("base_image_seq_len", 256),
            max_seq_len=config.get("max_image_seq_len", 4096),
            base_shift=config.get("base_shift", 0.5),
            max_shift=config.get("max_shift", 1.15),
        )

    def describe(self) -> str:
        grid = {
            "scheduler": "the scheduler's own grid",
            "linspace": "sigmas linspace(1, 1/T, T)",
            "linspace32": "sigmas linspace(1, 1/T, T) in float32",
            "to0": "sigmas linspace(1, 0, T + 1)[:-1]",
        }[self.base]
        shift = {
            None: "the scheduler's static shift",
            "linear": "dynamic shift mu(L), linear in the token count L",
            "empirical": "dynamic shift by the pipeline's empirical mu(L, T)",
        }[self.mu]
        text = "the scheduler's own grid and static shift" if self.base == "scheduler" else f"{grid}, {shift}"
        return text + (f" ({self.note})" if self.note else "")


# -- guidance -------------------------------------------------------------------------------------------------
class Text(NamedTuple):
    """One prompt's encoding: ``embeds`` (1, L, D), ``pooled`` (1, P) or None, ``mask`` (1, L) or None (None where
    every prompt has the model's fixed length), ``extra``: more per-row tensors of fixed shapes (1, ...), e.g. a
    second text encoder's embeddings and mask."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    extra: tuple[torch.Tensor, ...] = ()


@dataclass(frozen=True)
class CFG:
    """Classifier-free guidance from ``[negative, prompt]`` rows, on for a scale ``w > above`` (and unless the
    pipeline's config sets ``off_flag``). ``around``: ``"negative"`` combines ``v_neg + w (v - v_neg)``,
    ``"prompt"`` combines ``v + w (v - v_neg)`` (Z-Image's form); ``rescale``: the result is rescaled per token to
    the prompt's norm, ``c |v| / |c|`` ("true CFG", Qwen-Image)."""

    negative: str = ""
    above: float = 1.0
    around: str = "negative"
    rescale: bool = False
    off_flag: str = ""
    embedded = False

    def prompts(self, prompt: str, scale: float, pipe, negative: str | None = None) -> list[str]:
        on = scale > self.above and not (self.off_flag and getattr(pipe.config, self.off_flag, False))
        return [self.negative if negative is None else negative, prompt] if on else [prompt]

    def combine(self, negative: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
        if self.around == "prompt":
            combined = conditional + scale * (conditional - negative)
        else:
            combined = classifier_free(negative, conditional, scale)
        if self.rescale:
            return combined * (conditional.norm(dim=-1, keepdim=True) / combined.norm(dim=-1, keepdim=True))
        return combined

    def describe(self) -> str:
        kind = "true CFG" if self.rescale else "classifier-free"
        form = "v + w (v - v_neg)" if self.around == "prompt" else "v_neg + w (v - v_neg)"
        rescale = ", rescaled to |v| per token" if self.rescale else ""
        off = f" (and when the pipeline's {self.off_flag} is set)" if self.off_flag else ""
        return f"{kind}: rows [negative {self.negative!r}, prompt], {form}{rescale}; off for w <= {self.above:g}{off}"


@dataclass(frozen=True)
class Embedded:
    """Guidance-distilled: one row per prompt, the scale an input of the transformer (its guidance embedding)."""

    embedded = True

    def prompts(self, prompt: str, scale: float, pipe, negative: str | None = None) -> list[str]:
        return [prompt]

    def combine(self, negative: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
        raise AssertionError("an embedded-guidance branch has one row")

    def describe(self) -> str:
        return "embedded: the scale is an input of the guidance-distilled transformer"


@dataclass(frozen=True)
class Unguided:
    """No guidance at all (timestep-distilled): one row per prompt; the guidance settings change nothing."""

    embedded = False

    def prompts(self, prompt: str, scale: float, pipe, negative: str | None = None) -> list[str]:
        return [prompt]

    def combine(self, negative: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
        raise AssertionError("an unguided branch has one row")

    def describe(self) -> str:
        return "none: timestep-distilled, no guidance input (the guidance settings change nothing)"


# -- the per-family code --------------------------------------------------------------------------------------
class Rows(NamedTuple):
    """The conditioning of one transformer call's rows (``rows`` of them, as :func:`~._common.stack_rows` lays the
    latents out): ``embeds`` (rows, L, D), ``pooled`` (rows, P) or None, ``mask`` (rows, L) or None, ``scales``
    (rows,) float32 guidance scales for an embedded-guidance family, else None; ``extra`` the texts' extra tensors,
    each (rows, ...)."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None
    mask: torch.Tensor | None
    scales: torch.Tensor | None
    extra: tuple[torch.Tensor, ...] = ()


def call_keywords(model, hidden: torch.Tensor, timestep: torch.Tensor, inputs: dict) -> torch.Tensor:
    """The diffusers convention: ``model(hidden_states=..., timestep=..., **inputs, return_dict=False)[0]``."""
    return model(hidden_states=hidden, timestep=timestep, **inputs, return_dict=False)[0]


def the_transformer(pipe, t: float):
    """The pipeline's transformer (whatever ``t``)."""
    return pipe.transformer


@dataclass(frozen=True)
class Code:
    """What truly differs between families, a few lines each.

    ``prompt(pipe, prompt, device) -> Text``: encode one prompt with the pipeline's own ``encode_prompt``.
    ``inputs(pipe, rows, layout, device, dtype) -> dict``: the transformer's conditioning keywords for a batch of
    :class:`Rows` and latents of ``layout``, built once per batch layout. ``call(model, hidden, timestep, inputs)``:
    one transformer call (default: :func:`call_keywords`). ``model(pipe, t)``: the module that runs at ``t``
    (default: ``pipe.transformer``; Wan 2.2 switches experts).
    """

    prompt: Callable[..., Text]
    inputs: Callable[..., dict[str, Any]]
    call: Callable[..., torch.Tensor] = call_keywords
    model: Callable[..., Any] = the_transformer
