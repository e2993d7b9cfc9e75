"""The model families FlowEdit runs on, each a short description: what differs between diffusers' flow pipelines.

A family names its diffusers pipeline class, the adapter whose mechanics it uses, how it differs from its
siblings (timestep convention, guidance kind, latent normalisation, packing, sigma schedule, media), its
default :class:`~flowedit.models.EditSettings` and where those come from, and how to build its tiny offline
pipeline. ``flowedit models`` prints this table; :func:`family_of` picks the family of a loaded pipeline and
:func:`family_of_name` the family a model name or directory announces before anything is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._flux import FluxAdapter
from ._flux2 import Flux2Adapter
from ._qwen import QwenImageAdapter
from ._sd3 import SD3Adapter
from ._settings import EditSettings
from ._wan import WanAdapter, expert_boundary

__all__ = ["FAMILIES", "Family", "describe", "family_of", "family_of_name"]

REFERENCE = "the reference implementation's, which are the paper's"


@dataclass(frozen=True)
class Family:
    """One model family: a diffusers pipeline class and the few facts an editor needs about it."""

    name: str
    title: str
    pipeline: str  # diffusers pipeline class
    adapter: type  # the adapter class whose mechanics run it
    timestep: str  # what the transformer takes for the sigma t
    guidance: str  # how a guidance scale enters
    latents: str  # the VAE latent normalisation
    packing: str
    schedule: str
    defaults: EditSettings
    defaults_from: str  # where the defaults come from
    tiny: Callable[..., Any]  # (dtype=...) -> a tiny random-weight pipeline of this family
    media: str = "image"

    def matches(self, pipe) -> bool:
        """Whether ``pipe`` (a loaded diffusers pipeline) belongs to this family."""
        if type(pipe).__name__ != self.pipeline:
            return False
        if self.pipeline == "WanPipeline":  # Wan 2.2's A14B: two experts switched at boundary_ratio
            experts = expert_boundary(pipe.config.get("boundary_ratio"), pipe.transformer_2 is not None)
            return (experts is not None) == (self.name == "wan22")
        config = pipe.transformer.config
        if self.pipeline == "StableDiffusion3Pipeline":
            return (config.get("qk_norm") is not None) == (self.name == "sd35")
        if self.pipeline == "FluxPipeline":
            return bool(config.get("guidance_embeds")) == (self.name == "flux")
        return True


def _tiny(builder: str, **options: Any) -> Callable[..., Any]:
    def build(dtype=None):
        from .. import testing

        return getattr(testing, builder)(**options, **({} if dtype is None else {"dtype": dtype}))

    return build


_SD3 = dict(
    pipeline="StableDiffusion3Pipeline",
    adapter=SD3Adapter,
    timestep="1000 t",
    guidance="classifier-free: [negative, prompt] rows, off for a scale <= 1",
    latents="(mode - shift_factor) * scaling_factor",
    packing="none (the transformer patches 2x2 itself)",
    schedule="static shift 3 of the linear sigmas",
)
_FLUX = dict(
    pipeline="FluxPipeline",
    adapter=FluxAdapter,
    timestep="t",
    latents="(mode - shift_factor) * scaling_factor",
    packing="2x2 patches into tokens (B, L, 4C)",
)

_WAN = dict(
    pipeline="WanPipeline",
    adapter=WanAdapter,
    timestep="1000 t",
    guidance="classifier-free: [negative, prompt] rows (empty negative), off for a scale <= 1",
    latents="(mode - latents_mean) / latents_std per channel, (B, C, F', h, w), F = 4 F' - 3 frames",
    packing="none (the transformer patches 1x2x2 itself)",
    schedule="the scheduler's static flow_shift (Wan 2.1: 3 at 480p, 5 at 720p; Wan 2.2 TI2V 5B: 5)",
)

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="sd3",
            title="Stable Diffusion 3 (medium)",
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
            defaults_from=REFERENCE,
            tiny=_tiny("tiny_sd3_pipeline"),
            **_SD3,
        ),
        Family(
            name="sd35",
            title="Stable Diffusion 3.5 (medium, large)",
            # SD3.5 keeps SD3's rectified flow, grid (shift 3), CFG and latent convention; its transformer adds
            # QK normalisation (and dual attention layers in medium). Not tuned on real weights: SD3's settings,
            # whose start at t = 0.85 and guidance range are the paper's for this architecture.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
            defaults_from="reasoned, not tuned on real weights: SD3's (same grid, guidance and latents)",
            tiny=_tiny("tiny_sd3_pipeline", sd35=True),
            **_SD3,
        ),
        Family(
            name="flux",
            title="FLUX.1 [dev]",
            guidance="embedded: the scale is an input of the guidance-distilled transformer",
            schedule="dynamic shift mu(L), linear in the token count L",
            defaults=EditSettings(steps=28, n_max=24, n_min=0, n_avg=1, src_guidance=1.5, tar_guidance=5.5, seed=10),
            defaults_from=REFERENCE,
            tiny=_tiny("tiny_flux_pipeline"),
            **_FLUX,
        ),
        Family(
            name="flux-schnell",
            title="FLUX.1 [schnell]",
            guidance="none: timestep-distilled, no guidance input (the guidance settings change nothing)",
            schedule="static, no shift (the linear sigmas)",
            # Distilled to sample in 1-4 steps on the unshifted grid. 8 steps keep each Euler step within the
            # range it was trained for; n_max = 7 starts the edit at t = 0.875, near FLUX.1 [dev]'s 0.91-0.95 (256² to 1024²).
            defaults=EditSettings(steps=8, n_max=7, n_min=0, n_avg=1, src_guidance=1.0, tar_guidance=1.0, seed=10),
            defaults_from="reasoned, not tuned on real weights: start near FLUX.1 [dev]'s t, few steps",
            tiny=_tiny("tiny_flux_pipeline", guidance_embeds=False),
            **_FLUX,
        ),
        Family(
            name="flux2",
            title="FLUX.2 [dev]",
            pipeline="Flux2Pipeline",
            adapter=Flux2Adapter,
            timestep="t",
            guidance="embedded: the scale is an input of the guidance-distilled transformer",
            latents="2x2 patchified, then (x - bn.running_mean) / bn std per channel",
            packing="2x2 patches into tokens (B, L, 4C)",
            schedule="dynamic shift by the pipeline's empirical mu(L, T)",
            # Its own sampling default is 50 steps at guidance 4, FLUX.1 [dev]'s 3.5 scaled by 8/7: so are the
            # reference's 1.5 / 5.5 for FLUX.1 [dev], giving 1.7 / 6.3. n_max = 33 of 50 starts at t = 0.936 at
            # 1024^2 on its grid (as for [klein]), within FLUX.1 [dev]'s 0.91-0.95. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=1.7, tar_guidance=6.3, seed=10),
            defaults_from="reasoned, not tuned on real weights: FLUX.1 [dev]'s start t and guidance, rescaled",
            tiny=_tiny("tiny_flux2_pipeline"),
        ),
        Family(
            name="flux2-klein",
            title="FLUX.2 [klein]",
            pipeline="Flux2KleinPipeline",
            adapter=Flux2Adapter,
            timestep="t",
            guidance="classifier-free: [empty negative, prompt] rows, off <= 1 (and for distilled checkpoints)",
            latents="2x2 patchified, then (x - bn.running_mean) / bn std per channel",
            packing="2x2 patches into tokens (B, L, 4C)",
            schedule="dynamic shift by the pipeline's empirical mu(L, T)",
            # Its own sampling default is 50 steps at guidance 4. Its empirical mu shifts hard: n_max = 33 of 50
            # starts the edit at t = 0.936 at 1024^2 (0.914 at 512^2; diffusers' default exponential time shift,
            # not checked against the released scheduler config), within FLUX.1 [dev]'s 0.91-0.95; guidance
            # 2 / 8 is half and twice the default 4, as for Qwen-Image. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=10),
            defaults_from="reasoned, not tuned on real weights: FLUX.1 [dev]'s start t, guidance around the default",
            tiny=_tiny("tiny_flux2_klein_pipeline"),
        ),
        Family(
            name="qwen-image",
            title="Qwen-Image",
            pipeline="QwenImagePipeline",
            adapter=QwenImageAdapter,
            timestep="t",
            guidance="true CFG: negative-prompt rows, v_neg + w (v - v_neg) rescaled to |v| per token; off <= 1",
            latents="(mode - latents_mean) / latents_std per channel (causal video VAE, one frame)",
            packing="2x2 patches into tokens (B, L, 4C)",
            schedule="dynamic exponential shift mu(L) (0.5 to 0.9), stretched to end at 0.02",
            # Its own sampling default is 50 steps at true CFG 4. n_max = 37 of 50 starts the edit at t = 0.85 at
            # 1024^2, where SD3's 33 of 50 starts; guidance 2 / 8 is half and twice the pipeline's default 4, as the
            # paper's 3.5 / 13.5 are about half and twice SD3's default 7. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=37, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=42),
            defaults_from="reasoned, not tuned on real weights: SD3's start t and guidance ratios",
            tiny=_tiny("tiny_qwen_image_pipeline"),
        ),
        Family(
            name="wan",
            title="Wan 2.1 text-to-video (1.3B, 14B), Wan 2.2 TI2V 5B",
            # Its own sampling default is 50 steps at CFG 5 on flow_shift 3 (480p) or 5 (720p). n_max = 35 of 50
            # (0.7 of the steps) starts the edit at t = 0.875 with shift 3 (0.921 with shift 5), near SD3's 0.85 and
            # FLUX.1's 0.91-0.95; guidance 2.5 / 10 is half and twice the default 5, as the paper's 3.5 / 13.5 are
            # of SD3's 7. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=35, n_min=0, n_avg=1, src_guidance=2.5, tar_guidance=10.0, seed=42),
            defaults_from="reasoned, not tuned on real weights: 0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("tiny_wan_pipeline"),
            media="video",
            **_WAN,
        ),
        Family(
            name="wan22",
            title="Wan 2.2 text-to-video A14B (two experts)",
            # Its reference sampler: 40 steps, flow shift 12, CFG 4 (high-noise expert) and 3 (low-noise); one scale
            # here serves both. n_max = 28 of 40 (0.7 of the steps) starts at t = 0.966 with Wan 2.2's own shift 12:
            # the high-noise expert (t >= 0.875) makes the first 14 steps. With shift 3 it starts at t = 0.8752, just
            # above the boundary: the high-noise expert makes only the first step. Guidance 2 / 8 is half and twice 4.
            # Not tuned on real weights.
            defaults=EditSettings(steps=40, n_max=28, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=42),
            defaults_from="reasoned, not tuned on real weights: 0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("tiny_wan_pipeline", experts=2),
            media="video",
            **{
                **_WAN,
                "timestep": "1000 t, to transformer (t >= boundary_ratio) or transformer_2 (below)",
                "schedule": "the scheduler's static flow_shift (12 in Wan 2.2's reference sampler)",
            },
        ),
    )
}


def describe() -> str:
    """The table ``flowedit models`` prints: each family, how it differs, its defaults and their source."""
    facts = ("timestep", "guidance", "latents", "packing", "schedule", "media")  # how families differ
    lines = []
    for family in FAMILIES.values():
        lines.append(f"{family.name}: {family.title} ({family.pipeline}; offline: tiny-{family.name})")
        lines += [f"  {key + ':':<10} {getattr(family, key)}" for key in facts]
        defaults = ", ".join(f"{key} {value}" for key, value in asdict(family.defaults).items())
        lines += [f"  {'defaults:':<10} {defaults}", f"  {'':<10} ({family.defaults_from})"]
    return "\n".join(lines)


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, or ``TypeError`` listing the supported ones."""
    for family in FAMILIES.values():
        if family.matches(pipe):
            return family
    supported = ", ".join(sorted({f.pipeline for f in FAMILIES.values()}))
    raise TypeError(f"unsupported pipeline {type(pipe).__name__}; supported: {supported} (see `flowedit models`)")


def family_of_name(model: str) -> Family | None:
    """The family a model name announces (``tiny-<family>``, a hub id, or a local directory's config files),
    or None when only loading it will tell."""
    if model.startswith("tiny-") and model[5:] in FAMILIES:
        return FAMILIES[model[5:]]
    folder = Path(model)
    try:
        index = folder / "model_index.json"
        if index.is_file():
            pipeline = str(json.loads(index.read_text()).get("_class_name", ""))
            config_file = folder / "transformer" / "config.json"
            config = json.loads(config_file.read_text()) if config_file.is_file() else {}
            candidates = [f for f in FAMILIES.values() if f.pipeline == pipeline]
            if pipeline == "StableDiffusion3Pipeline":
                return FAMILIES["sd35" if config.get("qk_norm") else "sd3"]
            if pipeline == "FluxPipeline":
                return FAMILIES["flux" if config.get("guidance_embeds", True) else "flux-schnell"]
            if pipeline == "WanPipeline":
                index_config = json.loads(index.read_text())
                experts = (
                    index_config.get("boundary_ratio") is not None and (index_config.get("transformer_2") or [None])[0]
                )
                return FAMILIES["wan22" if experts else "wan"]
            return candidates[0] if len(candidates) == 1 else None
    except (OSError, ValueError, AttributeError):
        return None
    name = model.lower()
    if "flux.1-schnell" in name or "flux-schnell" in name:
        return FAMILIES["flux-schnell"]
    if "flux.1" in name or "flux-1" in name:
        return FAMILIES["flux"]
    if "stable-diffusion-3.5" in name or "sd3.5" in name:
        return FAMILIES["sd35"]
    if "stable-diffusion-3" in name:
        return FAMILIES["sd3"]
    if "flux.2-klein" in name or "flux2-klein" in name:
        return FAMILIES["flux2-klein"]
    if "flux.2-dev" in name or "flux2-dev" in name:
        return FAMILIES["flux2"]
    if "qwen-image" in name and "edit" not in name:
        return FAMILIES["qwen-image"]
    if "wan2.2-t2v-a14b" in name or "wan2.2-a14b" in name:
        return FAMILIES["wan22"]
    if "wan2.1-t2v" in name or "wan2.2-ti2v-5b" in name:
        return FAMILIES["wan"]
    return None
