"""``flowedit.models.Editor``: edit images with SD3 or FLUX through the shared integrator."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .._edit import check_schedule, edit_by_inversion, flowedit, sdedit
from .._records import short
from ._common import center_crop_to_multiple, check_finite, non_finite_hint
from ._flux import FluxAdapter
from ._images import ImageLimits, open_image, to_rgb
from ._sd3 import SD3Adapter

__all__ = ["DEFAULTS", "EditResult", "EditSettings", "Editor", "load"]

METHODS = ("flowedit", "inversion", "sdedit")
TILED_VAE_PIXELS = 1536 * 1536  # larger images are encoded and decoded by the VAE in tiles
MAX_STEPS = 1000  # diffusers' flow schedulers are trained on 1000 timesteps: no finer grid exists
MAX_N_AVG = 64  # all draws go into one model call: activation memory grows with n_avg
MAX_GUIDANCE = 100.0
MAX_SEED = 2**63 - 1
FLOWEDIT_ONLY = {"n_min": 0, "n_avg": 1}  # settings only FlowEdit reads, and their values that change nothing


def _setting(kind: type, help: str, low=None, high=None, choices=None, **default):
    """A field of :class:`EditSettings` with what checks it and documents it (CLI help, YAML keys)."""
    return field(metadata={"kind": kind, "help": help, "low": low, "high": high, "choices": choices}, **default)


@dataclass(frozen=True)
class EditSettings:
    """Everything that decides an edit besides the image and prompts (the paper's notation).

    Every setting is declared once here, with its type, bounds and help: :meth:`check`, the
    ``flowedit`` command-line options, the keys a batch file may override and the result records
    all derive from these fields.

    A guidance scale <= 1 turns classifier-free guidance off for SD3 (diffusers' convention: only the
    conditional half is evaluated); FLUX feeds the scale to its guidance embedding as it is.
    """

    steps: int = _setting(int, "sampling steps T on the model's sigma grid", 1, MAX_STEPS)
    n_max: int = _setting(int, "steps that edit (<= steps); the first T - n_max are skipped", 0, MAX_STEPS)
    n_min: int = _setting(int, "final steps of plain target sampling (<= n_max; flowedit only)", 0, MAX_STEPS)
    n_avg: int = _setting(int, "noise draws averaged per step, all in one model call (flowedit only)", 1, MAX_N_AVG)
    src_guidance: float = _setting(
        float, "source guidance scale (SD3: <= 1 turns classifier-free guidance off)", 0.0, MAX_GUIDANCE
    )
    tar_guidance: float = _setting(float, "target guidance scale", 0.0, MAX_GUIDANCE)
    seed: int = _setting(int, "noise seed", 0, MAX_SEED)
    method: str = _setting(str, "edit method", choices=METHODS, default="flowedit")

    @property
    def integration_steps(self) -> int:
        """ODE steps the edit runs: ``n_max`` (twice that for inversion: up, then down)."""
        return 2 * self.n_max if self.method == "inversion" else self.n_max

    @classmethod
    def parse(cls, name: str, value: Any) -> Any:
        """``value`` as setting ``name`` wants it (an int for a float setting is fine), or ``ValueError``."""
        spec = {f.name: f.metadata for f in fields(cls)}.get(name)
        if spec is None:
            raise ValueError(
                f"unknown setting {short(name)}; the settings are {', '.join(f.name for f in fields(cls))}"
            )
        kind = spec["kind"]
        accepted = (int, float) if kind is float else kind
        if isinstance(value, bool) or not isinstance(value, accepted):
            noun = {int: "an integer", float: "a number", str: "a string"}[kind]
            raise ValueError(f"{name} must be {noun}, got {short(value)}")
        return kind(value)

    def check(self) -> EditSettings:
        """Raise ``ValueError`` naming the setting, its value and the allowed range unless all are valid."""
        for f in fields(self):
            value, spec = self.parse(f.name, getattr(self, f.name)), f.metadata
            if spec["choices"] is not None and value not in spec["choices"]:
                raise ValueError(f"unknown {f.name} {short(value)}; choose one of {', '.join(spec['choices'])}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            low, high = spec["low"], spec["high"]
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{f.name} must lie in [{low}, {high}], got {short(value)}")
        check_schedule(self.steps, self.n_max, self.n_min, self.n_avg)
        if self.method != "flowedit":
            unused = [name for name, neutral in FLOWEDIT_ONLY.items() if getattr(self, name) != neutral]
            if unused:
                raise ValueError(
                    f"{' and '.join(unused)} only apply to method flowedit, not {self.method}; leave them out"
                )
        return self

    def replace(self, **options: Any) -> EditSettings:
        """These settings with every non-None option applied (types parsed), checked."""
        parsed = {name: self.parse(name, value) for name, value in options.items() if value is not None}
        return replace(self, **parsed).check()


# The reference implementation's defaults, which are the paper's.
DEFAULTS = {
    "sd3": EditSettings(steps=50, n_max=33, n_min=0, n_avg=1, src_guidance=3.5, tar_guidance=13.5, seed=42),
    "flux": EditSettings(steps=28, n_max=24, n_min=0, n_avg=1, src_guidance=1.5, tar_guidance=5.5, seed=10),
}


@dataclass(frozen=True)
class EditResult:
    """Latents of an edit and what it cost: ``model_calls`` transformer calls in ``seconds``.

    ``source`` and ``edited`` have the adapter's latent shape (SD3: ``(B, C, h, w)``; FLUX: packed
    ``(B, L, 4C)``), float32.
    """

    source: torch.Tensor
    edited: torch.Tensor
    settings: EditSettings
    model_calls: int
    seconds: float
    layout: Any = field(default=None, repr=False)  # what decoding needs besides the latents (FLUX: PackedLayout)

    @property
    def latent_mse(self) -> float:
        """``mean((edited - source)^2)`` over the latent's D numbers: how far the edit moved, per number.

        Not :func:`flowtoy.metrics.transport_cost`, which averages the squared *norm* over points; for one
        image the two differ by the factor D.
        """
        return (self.edited - self.source).square().mean().item()

    @property
    def outcome(self) -> dict[str, Any]:
        """What the edit measured, as a result record stores it."""
        return {"model_calls": self.model_calls, "latent_mse": self.latent_mse}


class Editor:
    """Edits images with one pipeline; build with :func:`load` or :meth:`from_pipeline`."""

    def __init__(self, adapter: SD3Adapter | FluxAdapter, limits: ImageLimits | None = None):
        self.adapter = adapter
        self.defaults = DEFAULTS[adapter.kind]
        self.limits = limits or ImageLimits()  # the largest image file and pixel count accepted from a path

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
        return self.defaults.replace(**overrides)

    def load_image(self, image):
        """A PIL image (or a path to one, read within :attr:`limits`) as 8-bit RGB, EXIF orientation
        applied (see :func:`~flowedit.models._images.to_rgb` for the modes), center-cropped to a multiple
        of the model's factor."""
        image = open_image(image, self.limits) if isinstance(image, str | Path) else to_rgb(image)
        return center_crop_to_multiple(image, self.adapter.vae_factor)

    def edit_latents(self, image, source_prompt: str, target_prompt: str, settings: EditSettings, progress=None):
        """Run one edit and return an :class:`EditResult` (latents, calls, time)."""
        adapter, s = self.adapter, settings.check()
        start = time.perf_counter()
        pixels = self.pipe.image_processor.preprocess(self.load_image(image))
        if hasattr(self.pipe.vae, "enable_tiling"):  # bounded VAE memory for large images only
            large = pixels.shape[-2] * pixels.shape[-1] > TILED_VAE_PIXELS
            self.pipe.vae.enable_tiling() if large else self.pipe.vae.disable_tiling()
        x, layout = adapter.encode_image(pixels)
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

        try:  # the integrator checks every velocity for NaN/inf (on a GPU with one sync per edit)
            if s.method == "flowedit":
                pair = counted(adapter.velocity_pair(src, tar, layout))
                y = flowedit(x, pair, ts, s.n_max, s.n_min, s.n_avg, generator, step)
            elif s.method == "inversion":
                v_src, v_tar = counted(adapter.velocity(src, layout)), counted(adapter.velocity(tar, layout))
                y = edit_by_inversion(x, v_src, v_tar, ts, s.n_max, "euler", step)
            else:
                y = sdedit(x, counted(adapter.velocity(tar, layout)), ts, s.n_max, generator, "euler", step)
        except FloatingPointError as err:
            raise FloatingPointError(f"the model's {err}; {non_finite_hint(adapter.dtype)}") from None
        check_finite(y, "the edited latent", adapter.dtype)
        return EditResult(x, y, s, calls, time.perf_counter() - start, layout)

    def decode(self, latents: torch.Tensor, layout=None):
        """Latents -> a list of PIL images; pass their layout (``result.layout`` for an :class:`EditResult`)."""
        pixels = self.adapter.decode_latents(latents, layout)
        return self.pipe.image_processor.postprocess(pixels, output_type="pil")

    def render(self, image, source_prompt: str, target_prompt: str, settings: EditSettings, progress=None):
        """Edit and decode: ``(edited PIL image, EditResult)``; the one path behind :meth:`edit` and the CLI."""
        result = self.edit_latents(image, source_prompt, target_prompt, settings, progress)
        return self.decode(result.edited, result.layout)[0], result

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
            return self.render(image, source_prompt, target_prompt, settings, progress=bar)[0]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device`` (default: ``cuda`` if available, else ``cpu``), or a ``ValueError``
    that says why it cannot be used here (not a device name; CUDA or that GPU missing)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device {short(device)} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"device {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "mps"):
        raise ValueError(f"device {str(device)!r} cannot run an edit; use cpu, cuda, cuda:N or mps")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    """The model dtype used unless one is asked for: bfloat16 on CUDA, float32 elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load(
    model: str, device: str | torch.device | None = None, dtype: torch.dtype | None = None, offload: bool = False
) -> Editor:
    """An :class:`Editor` for a hub id or local directory of an SD3 or FLUX.1 pipeline (``from_pretrained``).

    ``"tiny-sd3"`` and ``"tiny-flux"`` build the offline random-weight pipelines of :mod:`flowedit.testing`.
    ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU. ``offload=True`` keeps the modules on
    the CPU and moves each to the GPU only while it runs (diffusers' model CPU offload).
    """
    device = resolve_device(device)
    dtype = default_dtype(device) if dtype is None else dtype
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
