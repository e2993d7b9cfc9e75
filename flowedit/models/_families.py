"""The model families FlowEdit runs on, each a row the code reads: what differs between diffusers' flow pipelines.

A :class:`Family` names its diffusers pipeline class and holds small objects that both the one
:class:`~flowedit.models.Adapter` and ``flowedit models`` read: the timestep map and output sign, the guidance
kind, the latent normalisation, the packing, the sigma schedule, the media; plus the family's few lines of
code (how a prompt is encoded, how its transformer is called), its default
:class:`~flowedit.models.EditSettings` and where they come from, and its tiny offline pipeline.
:func:`family_of` picks the family of a loaded pipeline and :func:`family_of_name` the family a model name,
directory or hub id announces before anything is loaded; both ask the same :meth:`Family.recognises`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._chroma import CHROMA, chroma_timestep
from ._digits import DIGITS_SD3, is_digits_sd3, shipped
from ._flux import FLUX, flux_timestep
from ._flux2 import FLUX2, flux2_timestep
from ._hunyuan_video15 import HUNYUAN_VIDEO15, hunyuan_video15_timestep
from ._latents import BatchNormStats, ChannelStats, NoPacking, ScaledVAE, Tokens2x2
from ._qwen import QWEN_IMAGE, qwen_timestep
from ._rows import CFG, Code, Embedded, Sigmas, Timestep, Unguided
from ._sd3 import SD3, sd3_timestep
from ._settings import EditSettings
from ._wan import WAN, expert_boundary, wan_timestep
from ._z_image import Z_IMAGE, z_image_timestep

__all__ = ["FAMILIES", "Family", "describe", "family_of", "family_of_name"]

REFERENCE = "the reference implementation's, which are the paper's"
REASONED = "reasoned, not tuned on real weights: "


def any_config(transformer: Mapping, index: Mapping) -> bool:
    """Every pipeline of the class belongs to the family."""
    return True


@dataclass(frozen=True)
class Family:
    """One model family: a diffusers pipeline class and the facts an editor needs about it, as objects it reads.

    ``variant(transformer_config, model_index) -> bool`` tells this family from its siblings of the same pipeline
    class (SD3 from SD3.5, FLUX.1 [dev] from [schnell], Wan 2.1 from Wan 2.2 A14B); ``hub`` is a regular expression
    of the hub ids that announce it (matched lower-case).
    """

    name: str
    title: str
    pipeline: str  # diffusers pipeline class
    code: Code  # how a prompt is encoded and the transformer called
    timestep: Timestep  # the transformer's timestep for the sigma t, and the output's sign
    guidance: CFG | Embedded | Unguided  # how a guidance scale enters
    latents: ScaledVAE | ChannelStats | BatchNormStats  # the VAE latent normalisation
    packing: NoPacking | Tokens2x2
    schedule: Sigmas
    defaults: EditSettings
    defaults_from: str  # where the defaults come from
    tiny: Callable[..., Any]  # (dtype=...) -> a tiny random-weight pipeline of this family (or shipped weights)
    hub: str
    media: str = "image"
    variant: Callable[[Mapping, Mapping], bool] = any_config
    offline: str = ""  # what `flowedit models` says loads it offline (default: tiny-<name>, random weights)

    def recognises(self, pipeline: str, transformer: Mapping, index: Mapping) -> bool:
        """Whether a pipeline of class ``pipeline`` whose transformer config is ``transformer`` and whose
        ``model_index.json`` (or loaded pipeline config) is ``index`` belongs to this family."""
        return pipeline == self.pipeline and self.variant(transformer, index)

    def matches(self, pipe) -> bool:
        """Whether ``pipe`` (a loaded diffusers pipeline) belongs to this family."""
        if type(pipe).__name__ != self.pipeline:
            return False
        transformer = pipe.transformer if getattr(pipe, "transformer", None) is not None else pipe.transformer_2
        return self.recognises(type(pipe).__name__, transformer.config, pipe.config)


def _tiny(module: str, builder: str, **options: Any) -> Callable[..., Any]:
    def build(dtype=None):
        from importlib import import_module

        make = getattr(import_module(f"flowedit.testing.{module}"), builder)
        return make(**options, **({} if dtype is None else {"dtype": dtype}))

    return build


def _sd35(transformer: Mapping, index: Mapping) -> bool:  # SD3.5 adds QK normalisation
    return bool(transformer.get("qk_norm"))


def _flux_dev(transformer: Mapping, index: Mapping) -> bool:  # [dev] embeds the guidance scale, [schnell] has none
    return bool(transformer.get("guidance_embeds", True))


def _wan22(transformer: Mapping, index: Mapping) -> bool:  # Wan 2.2 A14B: two experts switched at boundary_ratio
    return expert_boundary(index.get("boundary_ratio"), (index.get("transformer_2") or [None])[0]) is not None


def _not(rule: Callable[[Mapping, Mapping], bool]) -> Callable[[Mapping, Mapping], bool]:
    return lambda transformer, index: not rule(transformer, index)


_SD3 = dict(
    pipeline="StableDiffusion3Pipeline",
    code=SD3,
    timestep=sd3_timestep,
    guidance=CFG(negative=""),
    latents=ScaledVAE(),
    packing=NoPacking(),
    schedule=Sigmas(note="shift 3"),
)
_FLUX = dict(
    pipeline="FluxPipeline",
    code=FLUX,
    timestep=flux_timestep,
    latents=ScaledVAE(),
    packing=Tokens2x2(),
)
_FLUX2 = dict(
    code=FLUX2,
    timestep=flux2_timestep,
    latents=BatchNormStats(),
    packing=Tokens2x2(feature_major=True),
    schedule=Sigmas("linspace", "empirical"),
)
_WAN = dict(
    pipeline="WanPipeline",
    code=WAN,
    timestep=wan_timestep,
    guidance=CFG(negative=""),
    latents=ChannelStats(),
    packing=NoPacking("1x2x2"),
)

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="sd3",
            title="Stable Diffusion 3 (medium)",
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
            defaults_from=REFERENCE,
            tiny=_tiny("sd3", "tiny_sd3_pipeline"),
            hub=r"stable-diffusion-3(?!\.5)",
            variant=lambda transformer, index: not _sd35(transformer, index) and not is_digits_sd3(transformer, index),
            **_SD3,
        ),
        Family(
            name="sd35",
            title="Stable Diffusion 3.5 (medium, large)",
            # SD3.5 keeps SD3's rectified flow, grid (shift 3), CFG and latent convention; its transformer adds
            # QK normalisation (and dual attention layers in medium). Not tuned on real weights: SD3's settings,
            # whose start at t = 0.85 and guidance range are the paper's for this architecture.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
            defaults_from=REASONED + "SD3's (same grid, guidance and latents)",
            tiny=_tiny("sd3", "tiny_sd3_pipeline", sd35=True),
            hub=r"stable-diffusion-3\.5|sd3\.5",
            variant=_sd35,
            **_SD3,
        ),
        Family(
            name="digits-sd3",
            title="SD3 trained on 8x8 digits at 32x32, shipped with the package: digits-sd3",
            # SD3's reference settings, measured on these weights by benchmarks/bench_digits_sd3.py (README).
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
            defaults_from="SD3's reference settings, measured on these trained weights in the README",
            tiny=shipped,
            offline="digits-sd3 or tiny-digits-sd3, both the trained weights",
            hub=r"^digits-sd3$",
            variant=is_digits_sd3,
            **{**_SD3, "code": DIGITS_SD3},
        ),
        Family(
            name="flux",
            title="FLUX.1 [dev]",
            guidance=Embedded(),
            schedule=Sigmas("linspace", "linear"),
            defaults=EditSettings(steps=28, n_max=24, n_min=0, n_avg=1, src_guidance=1.5, tar_guidance=5.5, seed=10),
            defaults_from=REFERENCE,
            tiny=_tiny("flux", "tiny_flux_pipeline"),
            hub=r"flux[.-]1(?!-schnell)",
            variant=_flux_dev,
            **_FLUX,
        ),
        Family(
            name="flux-schnell",
            title="FLUX.1 [schnell]",
            guidance=Unguided(),
            schedule=Sigmas("linspace", note="none in schnell's scheduler"),
            # Distilled to sample in 1-4 steps on the unshifted grid. 8 steps keep each Euler step within the
            # range it was trained for; n_max = 7 starts the edit at t = 0.875, near FLUX.1 [dev]'s 0.91-0.95 (256² to 1024²).
            defaults=EditSettings(steps=8, n_max=7, n_min=0, n_avg=1, src_guidance=1.0, tar_guidance=1.0, seed=10),
            defaults_from=REASONED + "start near FLUX.1 [dev]'s t, few steps",
            tiny=_tiny("flux", "tiny_flux_pipeline", guidance_embeds=False),
            hub=r"flux[.-]1-schnell|flux-schnell",
            variant=_not(_flux_dev),
            **_FLUX,
        ),
        Family(
            name="flux2",
            title="FLUX.2 [dev]",
            pipeline="Flux2Pipeline",
            guidance=Embedded(),
            # Its own sampling default is 50 steps at guidance 4, FLUX.1 [dev]'s 3.5 scaled by 8/7: so are the
            # reference's 1.5 / 5.5 for FLUX.1 [dev], giving 1.7 / 6.3. n_max = 33 of 50 starts at t = 0.936 at
            # 1024^2 on its grid (as for [klein]), within FLUX.1 [dev]'s 0.91-0.95. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=1.7, tar_guidance=6.3, seed=10),
            defaults_from=REASONED + "FLUX.1 [dev]'s start t and guidance, rescaled",
            tiny=_tiny("flux2", "tiny_flux2_pipeline"),
            hub=r"flux\.?2-dev",
            **_FLUX2,
        ),
        Family(
            name="flux2-klein",
            title="FLUX.2 [klein]",
            pipeline="Flux2KleinPipeline",
            guidance=CFG(negative="", off_flag="is_distilled"),
            # Its own sampling default is 50 steps at guidance 4. Its empirical mu shifts hard: n_max = 33 of 50
            # starts the edit at t = 0.936 at 1024^2 (0.914 at 512^2; diffusers' default exponential time shift,
            # not checked against the released scheduler config), within FLUX.1 [dev]'s 0.91-0.95; guidance
            # 2 / 8 is half and twice the default 4, as for Qwen-Image. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=10),
            defaults_from=REASONED + "FLUX.1 [dev]'s start t, guidance around the default",
            tiny=_tiny("flux2", "tiny_flux2_klein_pipeline"),
            hub=r"flux\.?2-klein",
            **_FLUX2,
        ),
        Family(
            name="qwen-image",
            title="Qwen-Image",
            pipeline="QwenImagePipeline",
            code=QWEN_IMAGE,
            timestep=qwen_timestep,
            guidance=CFG(negative=" ", rescale=True),  # its own examples enable true CFG with a blank negative
            latents=ChannelStats(one_frame=True),
            packing=Tokens2x2(),
            schedule=Sigmas("linspace", "linear", "exponential time shift, mu 0.5 to 0.9, stretched to end at 0.02"),
            # Its own sampling default is 50 steps at true CFG 4. n_max = 37 of 50 starts the edit at t = 0.85 at
            # 1024^2, where SD3's 33 of 50 starts; guidance 2 / 8 is half and twice the pipeline's default 4, as the
            # paper's 3.5 / 13.5 are about half and twice SD3's default 7. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=37, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=42),
            defaults_from=REASONED + "SD3's start t and guidance ratios",
            tiny=_tiny("qwen_image", "tiny_qwen_image_pipeline"),
            hub=r"^(?!.*edit).*qwen-image",
        ),
        Family(
            name="wan",
            title="Wan 2.1 text-to-video (1.3B, 14B), Wan 2.2 TI2V 5B",
            schedule=Sigmas(note="flow_shift: Wan 2.1 3 at 480p, 5 at 720p; Wan 2.2 TI2V 5B 5"),
            # Its own sampling default is 50 steps at CFG 5 on flow_shift 3 (480p) or 5 (720p). n_max = 35 of 50
            # (0.7 of the steps) starts the edit at t = 0.875 with shift 3 (0.921 with shift 5), near SD3's 0.85 and
            # FLUX.1's 0.91-0.95; guidance 2.5 / 10 is half and twice the default 5, as the paper's 3.5 / 13.5 are
            # of SD3's 7. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=35, n_min=0, n_avg=1, src_guidance=2.5, tar_guidance=10.0, seed=42),
            defaults_from=REASONED + "0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("wan", "tiny_wan_pipeline"),
            hub=r"wan2\.1-t2v|wan2\.2-ti2v-5b",
            media="video",
            variant=_not(_wan22),
            **_WAN,
        ),
        Family(
            name="wan22",
            title="Wan 2.2 text-to-video A14B (two experts)",
            schedule=Sigmas(note="flow_shift 12 in Wan 2.2's reference sampler"),
            # Its reference sampler: 40 steps, flow shift 12, CFG 4 (high-noise expert) and 3 (low-noise); one scale
            # here serves both. n_max = 28 of 40 (0.7 of the steps) starts at t = 0.966 with Wan 2.2's own shift 12:
            # the high-noise expert (t >= 0.875) makes the first 14 steps. With shift 3 it starts at t = 0.8752, just
            # above the boundary: the high-noise expert makes only the first step. Guidance 2 / 8 is half and twice 4.
            # Not tuned on real weights.
            defaults=EditSettings(steps=40, n_max=28, n_min=0, n_avg=1, src_guidance=2.0, tar_guidance=8.0, seed=42),
            defaults_from=REASONED + "0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("wan", "tiny_wan_pipeline", experts=2),
            hub=r"wan2\.2-(t2v-)?a14b",
            media="video",
            variant=_wan22,
            **{
                **_WAN,
                "timestep": wan_timestep.replace(note="to transformer for t >= boundary_ratio, else transformer_2"),
            },
        ),
        Family(
            name="z-image",
            title="Z-Image (Turbo)",
            pipeline="ZImagePipeline",
            code=Z_IMAGE,
            timestep=z_image_timestep,
            guidance=CFG(negative="", above=0.0, around="prompt"),
            latents=ScaledVAE(),
            packing=NoPacking(),
            schedule=Sigmas("linspace32", "linear", "mu applies where the scheduler shifts dynamically; Turbo: 3"),
            # Its pipeline's default is 50 steps at guidance 5 (v + 5 (v - v_neg)); Turbo samples in 8 steps at 0
            # (off). n_max = 35 of 50 (0.7 of the steps) starts the edit at t = 0.875 with the static shift 3, where
            # Wan's start; guidance 2.5 / 10 is half and twice the default 5. Turbo: fewer steps, guidance 0.
            # Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=35, n_min=0, n_avg=1, src_guidance=2.5, tar_guidance=10.0, seed=42),
            defaults_from=REASONED + "0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("z_image", "tiny_z_image_pipeline"),
            hub=r"^(?!.*edit).*z-image",
        ),
        Family(
            name="chroma",
            title="Chroma",
            pipeline="ChromaPipeline",
            code=CHROMA,
            timestep=chroma_timestep,
            guidance=CFG(negative=""),
            latents=ScaledVAE(),
            packing=Tokens2x2(),
            schedule=Sigmas("linspace", "linear"),
            # FLUX.1 [schnell] de-distilled: its own default is 35 steps at CFG 5 on FLUX.1's dynamic shift.
            # n_max = 28 of 35 starts the edit at t = 0.93 at 1024^2 (0.89 at 512^2), within FLUX.1 [dev]'s
            # 0.91-0.95; guidance 2.5 / 10 is half and twice the default 5, as the paper's 3.5 / 13.5 are of SD3's 7.
            # Not tuned on real weights.
            defaults=EditSettings(steps=35, n_max=28, n_min=0, n_avg=1, src_guidance=2.5, tar_guidance=10.0, seed=10),
            defaults_from=REASONED + "FLUX.1 [dev]'s start t, guidance half and twice the default",
            tiny=_tiny("chroma", "tiny_chroma_pipeline"),
            hub=r"chroma(?!.*radiance)",
        ),
        Family(
            name="hunyuan-video15",
            title="HunyuanVideo 1.5 text-to-video (480p, 720p)",
            pipeline="HunyuanVideo15Pipeline",
            code=HUNYUAN_VIDEO15,
            timestep=hunyuan_video15_timestep,
            guidance=CFG(negative=""),  # the pipeline's guider: v_neg + w (v - v_neg), its scale replaced by ours
            latents=ScaledVAE(shift=False),
            packing=NoPacking("1x1x1"),
            schedule=Sigmas("to0", note="5 to 9 in the released configs"),
            # Its own sampling default is 50 steps at CFG 6 with a static shift (5 to 9 in the released
            # configs). n_max = 35 of 50 (0.7 of the steps, as for Wan) starts the edit at t = 0.92 with shift 5;
            # guidance 3 / 12 is half and twice the default 6. Not tuned on real weights.
            defaults=EditSettings(steps=50, n_max=35, n_min=0, n_avg=1, src_guidance=3.0, tar_guidance=12.0, seed=42),
            defaults_from=REASONED + "0.7 of the steps, guidance half and twice the default",
            tiny=_tiny("hunyuan_video15", "tiny_hunyuan_video15_pipeline"),
            hub=r"hunyuanvideo-1\.5(?!.*i2v)",
            media="video",
        ),
    )
}


def describe() -> str:
    """The table ``flowedit models`` prints: each family's row (the objects the adapter reads, each describing
    itself), its defaults and their source."""
    lines = []
    for family in FAMILIES.values():
        offline = family.offline or f"tiny-{family.name}"
        lines.append(f"{family.name}: {family.title} ({family.pipeline}; offline: {offline})")
        facts = {
            "timestep": family.timestep.describe(),
            "guidance": family.guidance.describe(),
            "latents": family.latents.describe(),
            "packing": family.packing.describe(),
            "schedule": family.schedule.describe(),
            "media": family.media,
        }
        lines += [f"  {key + ':':<10} {value}" for key, value in facts.items()]
        defaults = ", ".join(f"{k} {v}" for k, v in asdict(family.defaults).items() if v is not None)  # no strengths
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
    """The family a model name announces (``tiny-<family>``, a local directory's config files, or a hub id), or
    None when only loading it will tell."""
    if model.startswith("tiny-") and model[5:] in FAMILIES:
        return FAMILIES[model[5:]]
    folder = Path(model)
    try:
        index_file = folder / "model_index.json"
        if index_file.is_file():
            index = json.loads(index_file.read_text())
            config_file = folder / "transformer" / "config.json"
            transformer = json.loads(config_file.read_text()) if config_file.is_file() else {}
            pipeline = str(index.get("_class_name", ""))
            return next((f for f in FAMILIES.values() if f.recognises(pipeline, transformer, index)), None)
    except (OSError, ValueError, AttributeError):
        return None
    name = model.lower()
    return next((f for f in FAMILIES.values() if re.search(f.hub, name)), None)
