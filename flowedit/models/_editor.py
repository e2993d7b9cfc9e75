"""``flowedit.models.Editor``: edit images with SD3 or FLUX through the shared integrator."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .._edit import check_schedule, edit_by_inversion, flowedit, sdedit
from ._common import center_crop_to_multiple, check_finite
from ._flux import FluxAdapter
from ._sd3 import SD3Adapter

__all__ = ["DEFAULTS", "EditResult", "EditSettings", "Editor", "load"]

METHODS = ("flowedit", "inversion", "sdedit")
TILED_VAE_PIXELS = 1536 * 1536  # larger images are encoded and decoded by the VAE in tiles


@dataclass(frozen=True)
class EditSettings:
    """Everything that decides an edit besides the image and prompts (the paper's notation).

    A guidance scale <= 1 turns classifier-free guidance off for SD3 (diffusers' convention: only the
    conditional half is evaluated); FLUX feeds the scale to its guidance embedding as it is.
    """

    steps: int
    n_max: int
    n_min: int
    n_avg: int
    src_guidance: float
    tar_guidance: float
    seed: int
    method: str = "flowedit"

    @property
    def integration_steps(self) -> int:
        """ODE steps the edit runs: ``n_max`` (twice that for inversion: up, then down)."""
        return 2 * self.n_max if self.method == "inversion" else self.n_max

    def check(self) -> EditSettings:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        check_schedule(self.steps, self.n_max, self.n_min, self.n_avg)
        return self


# The reference implementation's defaults, which are the paper's.
DEFAULTS = {
    "sd3": EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
    "flux": EditSettings(steps=28, n_max=24, n_min=0, n_avg=1, src_guidance=1.5, tar_guidance=5.5, seed=10),
}


@dataclass(frozen=True)
class EditResult:
    """Latents of an edit and what it cost: ``model_calls`` transformer calls in ``seconds``."""

    source: torch.Tensor
    edited: torch.Tensor
    settings: EditSettings
    model_calls: int
    seconds: float
    context: Any = field(default=None, repr=False)  # what decoding needs besides the latents (FLUX: shape)

    @property
    def transport_cost(self) -> float:
        """Mean squared latent distance from source to edit (the paper's transport measure)."""
        return (self.edited - self.source).square().mean().item()


class Editor:
    """Edits images with one pipeline; build with :func:`load` or :meth:`from_pipeline`."""

    def __init__(self, adapter: SD3Adapter | FluxAdapter):
        self.adapter = adapter
        self.defaults = DEFAULTS[adapter.kind]

    @classmethod
    def from_pipeline(cls, pipe) -> Editor:
        name = type(pipe).__name__
        if name.startswith("StableDiffusion3"):
            return cls(SD3Adapter(pipe))
        if name.startswith("Flux"):
            return cls(FluxAdapter(pipe))
        raise TypeError(f"unsupported pipeline {name}; use a StableDiffusion3Pipeline or a FluxPipeline")

    @property
    def pipe(self):
        return self.adapter.pipe

    def settings(self, **overrides: Any) -> EditSettings:
        """The model's defaults with every non-None override applied, checked."""
        return replace(self.defaults, **{k: v for k, v in overrides.items() if v is not None}).check()

    def load_image(self, image):
        """A PIL image (or a path to one), RGB, center-cropped to a multiple of the model's factor."""
        from PIL import Image

        if isinstance(image, str | Path):
            with Image.open(image) as opened:
                image = opened.convert("RGB")
        return center_crop_to_multiple(image.convert("RGB"), self.adapter.vae_factor)

    def edit_latents(self, image, source_prompt: str, target_prompt: str, settings: EditSettings, progress=None):
        """Run one edit and return an :class:`EditResult` (latents, calls, time)."""
        adapter, s = self.adapter, settings.check()
        adapter.watch.reset()  # a failed earlier edit must not taint this one
        start = time.perf_counter()
        pixels = self.pipe.image_processor.preprocess(self.load_image(image))
        if hasattr(self.pipe.vae, "enable_tiling"):  # bounded VAE memory for large images only
            large = pixels.shape[-2] * pixels.shape[-1] > TILED_VAE_PIXELS
            self.pipe.vae.enable_tiling() if large else self.pipe.vae.disable_tiling()
        x = adapter.encode_image(pixels)
        ts = adapter.timesteps(s.steps, x)
        src = adapter.encode_prompt(source_prompt, s.src_guidance)
        tar = adapter.encode_prompt(target_prompt, s.tar_guidance)
        generator = torch.Generator(device=x.device).manual_seed(s.seed)
        calls = 0

        def counted(v):
            def wrapped(*args):
                nonlocal calls
                calls += 1
                return v(*args)

            return wrapped

        def step(info):
            if progress is not None:
                progress.update(1)

        if s.method == "flowedit":
            y = flowedit(x, counted(adapter.velocity_pair(src, tar)), ts, s.n_max, s.n_min, s.n_avg, generator, step)
        elif s.method == "inversion":
            y = edit_by_inversion(
                x, counted(adapter.velocity(src)), counted(adapter.velocity(tar)), ts, s.n_max, "euler", step
            )
        else:
            y = sdedit(x, counted(adapter.velocity(tar)), ts, s.n_max, generator, "euler", step)
        adapter.watch.check()  # any NaN/inf from the model during the edit (one sync, at the end)
        check_finite(y, "the edited latent")
        return EditResult(x, y, s, calls, time.perf_counter() - start, adapter.image_context())

    def decode(self, latents: torch.Tensor, context=None):
        """Latents -> a list of PIL images; pass ``result.context`` when decoding an :class:`EditResult`."""
        pixels = self.adapter.decode_latents(latents, context)
        return self.pipe.image_processor.postprocess(pixels, output_type="pil")

    def edit(self, image, source_prompt: str, target_prompt: str, **options: Any):
        """Edit ``image`` (PIL image or path) from ``source_prompt`` to ``target_prompt``; returns a PIL image.

        Options (default: the model's reference defaults, :data:`DEFAULTS`): ``steps``, ``n_max``,
        ``n_min``, ``n_avg``, ``src_guidance``, ``tar_guidance``, ``seed``, ``method`` (``"flowedit"``,
        ``"inversion"`` or ``"sdedit"``). The noise comes from a generator seeded with ``seed``, one
        latent-shaped draw per step in step order. Shows a progress bar over the steps.
        """
        from tqdm import tqdm

        settings = self.settings(**options)
        with tqdm(total=settings.integration_steps, desc=settings.method, unit="step", leave=False) as bar:
            result = self.edit_latents(image, source_prompt, target_prompt, settings, progress=bar)
        return self.decode(result.edited, result.context)[0]


def load(
    model: str, device: str | torch.device | None = None, dtype: torch.dtype | None = None, offload: bool = False
) -> Editor:
    """An :class:`Editor` for a hub id or local directory of an SD3 or FLUX.1 pipeline (``from_pretrained``).

    ``"tiny-sd3"`` and ``"tiny-flux"`` build the offline random-weight pipelines of :mod:`flowedit.testing`.
    ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU. ``offload=True`` keeps the modules on
    the CPU and moves each to the GPU only while it runs (diffusers' model CPU offload).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if model in ("tiny-sd3", "tiny-flux"):
        from .. import testing

        build = testing.tiny_sd3_pipeline if model == "tiny-sd3" else testing.tiny_flux_pipeline
        return Editor.from_pipeline(build(dtype=dtype).to(device))
    try:
        from diffusers import DiffusionPipeline
    except ImportError as err:
        raise ImportError("flowedit.load needs the models extra: pip install 'flowtoy-flowedit[models]'") from err
    try:
        pipe = DiffusionPipeline.from_pretrained(model, torch_dtype=dtype)
    except (OSError, ValueError) as err:
        raise OSError(
            f"could not load the pipeline {model!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Pass a local directory that holds the model (model_index.json and its folders), e.g. one made with "
            "`huggingface-cli download <model id> --local-dir DIR` on a machine with access to the hub"
        ) from err
    if offload and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    return Editor.from_pipeline(pipe)
