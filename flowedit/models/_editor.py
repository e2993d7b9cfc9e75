"""``flowedit.models.Editor``: edit images with any supported family through the shared integrator."""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._text import short
from ..media.images import ImageLimits, open_image
from ..media.masks import open_mask, pixel_mask
from ..media.modes import as_picture, to_rgb
from ..media.video import Clip, fit_frames, read_video
from ._adapter import Adapter
from ._arguments import as_dtype, check_prompt
from ._common import center_crop_to_multiple, check_finite, from_pretrained, non_finite_hint
from ._families import FAMILIES, Family, family_of, family_of_name
from ._masks import latent_mask
from ._methods import run_method
from ._settings import EditSettings, check_local_edit

__all__ = ["DEFAULTS", "EditResult", "EditSettings", "Editor", "load"]

TILED_VAE_PIXELS = 1536 * 1536  # larger images are encoded and decoded by the VAE in tiles
# Video frames larger than Wan's 480p (832 x 480) go through the VAE in spatial tiles: the causal VAE already
# works through time a few frames at a time, so its memory grows with the frame size (reasoned, not measured).
TILED_VIDEO_PIXELS = 832 * 480
DEFAULTS = {name: family.defaults for name, family in FAMILIES.items()}  # each family's default settings


@dataclass(frozen=True)
class EditResult:
    """Latents of an edit and what it cost: ``model_calls`` transformer calls in ``seconds``.

    ``source`` and ``edited`` have the adapter's latent shape (SD3: ``(B, C, h, w)``; FLUX: packed
    ``(B, L, 4C)``; Wan: ``(B, C, F', h, w)``), float32. ``image`` is the source as edited: a PIL image, or
    for a video family a :class:`~flowedit.models.Clip` (its frames and frame rate).
    """

    source: torch.Tensor
    edited: torch.Tensor
    settings: EditSettings
    model_calls: int
    seconds: float
    layout: Any = field(default=None, repr=False)  # what decoding needs besides the latents (FLUX: PackedLayout)
    image: Any = field(default=None, repr=False)  # the source as edited (RGB, cropped to the model's factor)
    mask: Any = field(default=None, repr=False)  # the pixel mask of a local edit (mode "L", white = edit), or None

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
    """Edits images with one pipeline of a supported :class:`~flowedit.models.Family`; build with :func:`load`
    or :meth:`from_pipeline`. ``defaults`` are the family's settings; ``model`` names the model as it was loaded
    (a hub id, a local directory or ``tiny-<family>``), as records state it."""

    def __init__(self, adapter: Adapter, family: Family, limits: ImageLimits | None = None, model: str | None = None):
        self.adapter, self.family, self.model = adapter, family, model or family.name
        self.defaults = family.defaults
        self.limits = limits or ImageLimits()  # the largest image file and pixel count accepted from a path

    @classmethod
    def from_pipeline(cls, pipe, model: str | None = None) -> Editor:
        """An editor for a loaded diffusers pipeline; its family is read from the pipeline (``TypeError`` if none).
        ``model`` names it in records (default: the pipeline's ``name_or_path``, else the family's name)."""
        family = family_of(pipe)
        return cls(Adapter(pipe, family), family, model=model or getattr(pipe, "name_or_path", None))

    @property
    def pipe(self):
        return self.adapter.pipe

    def settings(self, **overrides: Any) -> EditSettings:
        """The model's defaults with every non-None override applied, checked."""
        return self.defaults.replace(**overrides)

    def load_image(self, image):
        """A PIL image (or a path to one, read within :attr:`limits`, or a uint8 array (H, W), (H, W, 3) or
        (H, W, 4)) as 8-bit RGB, EXIF orientation applied (see :func:`~flowedit.media.images.to_rgb` for the
        modes), center-cropped to a multiple of the model's factor."""
        image = open_image(image, self.limits) if isinstance(image, str | Path) else to_rgb(as_picture(image))
        return center_crop_to_multiple(image, self.adapter.vae_factor)

    @property
    def video(self) -> bool:
        """Whether this model edits videos (its family's media)."""
        return self.family.media == "video"

    def load_video(self, video, fps: float | None = None) -> Clip:
        """A video (a GIF, an MP4, a folder of frames or a list of PIL images; read within :attr:`limits`) as a
        :class:`~flowedit.models.Clip` of RGB frames center-cropped to a multiple of the model's factor and cut to
        the VAE's ``4k + 1`` frames, with a warning for each change. ``fps`` is used where the source has none."""
        clip = read_video(video, self.limits, fps)
        first = center_crop_to_multiple(clip.frames[0], self.adapter.vae_factor, "frame")
        with warnings.catch_warnings():  # the first frame's warning says it for all
            warnings.simplefilter("ignore")
            frames = [first] + [center_crop_to_multiple(f, self.adapter.vae_factor, "frame") for f in clip.frames[1:]]
        return fit_frames(Clip(frames, clip.fps), self.adapter.temporal_factor)

    def _pixels(self, source):
        """The source as the model sees it, ``(picture, pixels)``: an RGB image and (1, 3, H, W), or a Clip and
        (1, 3, F, H, W), in [-1, 1]; the VAE tiles large frames."""
        if self.video:
            picture = self.load_video(source)
            width, height = picture.size
            pixels = self.pipe.video_processor.preprocess_video(picture.frames, height=height, width=width)
            large = height * width > TILED_VIDEO_PIXELS
        else:
            picture = self.load_image(source)
            pixels = self.pipe.image_processor.preprocess(picture)
            large = pixels.shape[-2] * pixels.shape[-1] > TILED_VAE_PIXELS
        if hasattr(self.pipe.vae, "enable_tiling"):  # bounded VAE memory for large images only
            self.pipe.vae.enable_tiling() if large else self.pipe.vae.disable_tiling()
        return picture, pixels

    def load_mask(self, mask, image, feather: float = 0.0):
        """``mask`` (a PIL image, a uint8 array or a path, read within :attr:`limits`; white = edit; alpha is
        ignored) as a mode-"L" mask of the loaded ``image``'s size, feathered by ``feather`` pixels (see
        :func:`~flowedit.models._masks.pixel_mask`)."""
        if isinstance(mask, str | Path):
            mask = open_mask(mask, self.limits)
        return pixel_mask(mask, image.size, feather)

    def edit_latents(
        self,
        image,
        source_prompt: str,
        target_prompt: str,
        settings: EditSettings,
        progress=None,
        mask=None,
        feather: float = 0.0,
    ):
        """Run one edit and return an :class:`EditResult` (latents, calls, time).

        ``settings.method`` picks the method (:mod:`._methods` says what each asks of the adapter and costs).
        With a ``mask`` (PIL image or path; white = edit, black = keep; methods flowedit, flowalign, dvrf and dds:
        UniEdit-Flow's own soft mask is not scaled by a user's, inversion and SDEdit start from noise) the edit is local:
        the latent update is scaled by the mask on the latent grid (exactly the source where it is 0), and
        :meth:`render` composites the decoded result over the source, so black pixels stay the input's own.
        """
        adapter, s = self.adapter, settings.check()
        start = time.perf_counter()
        check_prompt(source_prompt, "source_prompt")
        check_prompt(target_prompt, "target_prompt")
        check_local_edit(self.family.media, s.method, mask is not None, feather, self.family.name)
        picture, pixels = self._pixels(image)
        if mask is not None:
            mask = self.load_mask(mask, picture, feather)
        x, layout = adapter.encode_image(pixels)
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

        local = None if mask is None else latent_mask(mask, x, layout)
        try:  # the integrator checks every velocity for NaN/inf (on a GPU with one sync per edit)
            y = run_method(adapter, s, x, layout, (source_prompt, target_prompt), counted, step, local)
        except FloatingPointError as err:
            raise FloatingPointError(f"the model's {err}; {non_finite_hint(adapter.dtype)}") from None
        check_finite(y, "the edited latent", adapter.dtype)
        return EditResult(x, y, s, calls, time.perf_counter() - start, layout, picture, mask)

    def decode(self, latents: torch.Tensor, layout=None):
        """Latents -> a list of PIL images (a video family: the first video's frames); pass their layout
        (``result.layout`` for an :class:`EditResult`)."""
        pixels = self.adapter.decode_latents(latents, layout)
        if self.video:
            return self.pipe.video_processor.postprocess_video(pixels, output_type="pil")[0]
        return self.pipe.image_processor.postprocess(pixels, output_type="pil")

    def render(
        self, image, source_prompt: str, target_prompt: str, settings: EditSettings, progress=None, **local: Any
    ):
        """Edit and decode: ``(edited PIL image, EditResult)`` (a video family: ``(list of frames, EditResult)``);
        the one path behind :meth:`edit` and the CLI.

        ``local`` takes :meth:`edit_latents`' ``mask`` and ``feather``; a local edit is composited over the
        source with its pixel mask, so the pixels it keeps are the input's, bit for bit."""
        from PIL import Image

        result = self.edit_latents(image, source_prompt, target_prompt, settings, progress, **local)
        if self.video:
            return self.decode(result.edited, result.layout), result
        edited = self.decode(result.edited, result.layout)[0]
        if result.mask is not None:
            edited = Image.composite(edited, result.image, result.mask)
        return edited, result

    def edit(self, image, source_prompt: str, target_prompt: str, mask=None, feather: float = 0.0, **options: Any):
        """Edit ``image`` (PIL image or path) from ``source_prompt`` to ``target_prompt``; returns a PIL image.

        A video family (Wan) takes a video instead, as :meth:`load_video` reads it (GIF, MP4, folder of frames,
        list of PIL images), and returns the edited frames, as many and as large as :meth:`load_video` made them.

        Options (default: the model family's, :attr:`defaults`): ``steps``, ``n_max``, ``n_min``, ``n_avg``,
        ``src_guidance``, ``tar_guidance``, ``seed``, ``method`` (``"flowedit"``, ``"inversion"``, ``"sdedit"``,
        ``"flowalign"``, ``"dvrf"``, ``"dds"`` or ``"uniedit"``; a method brings its official settings for those not
        given) and its strength (``zeta``, ``eta``, ``omega``; ``solver`` for inversion). ``mask`` (PIL image or path, white = edit) makes the edit local, ``feather`` softens its
        edge by that many pixels. The noise comes from a generator seeded with ``seed``, one latent-shaped draw
        per step in step order. Shows a progress bar over the steps.
        """
        from tqdm import tqdm

        settings = self.settings(**options)  # prompts and the local edit are checked by edit_latents, before any work
        with tqdm(total=settings.integration_steps, desc=settings.method, unit="step", leave=False) as bar:
            return self.render(image, source_prompt, target_prompt, settings, bar, mask=mask, feather=feather)[0]


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _local_problem(model: str) -> str | None:
    """Why ``model`` cannot be a pipeline, told from the file system alone; None if it may be one."""
    path = Path(model).expanduser()
    try:
        if path.is_dir():
            return None if (path / "model_index.json").is_file() else "the folder holds no model_index.json"
        if path.exists():
            return "it is a file; give the folder that holds model_index.json"
    except OSError as err:
        return f"it cannot be read ({err.strerror})"
    if not _HUB_ID.fullmatch(model):
        return "no such folder, and it is not a hub id (owner/name)"
    return None


def _load_problem(model: str, err: BaseException) -> str:
    """Our own words for a failed ``from_pretrained`` (diffusers' cite a stack trace the user never sees)."""
    if Path(model).expanduser().is_dir():
        return f"its model_index.json or a component folder is incomplete or damaged ({type(err).__name__})"
    return "no such local folder, and the hub has no such pipeline or cannot be reached (none is in its cache)"


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
    model: str,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    offload: bool = False,
) -> Editor:
    """An :class:`Editor` for a hub id or local directory of a supported pipeline (``from_pretrained``).

    ``"tiny-<family>"`` (``tiny-sd3``, ``tiny-sd35``, ``tiny-flux``, ``tiny-flux-schnell``: see ``flowedit models``)
    builds that family's offline random-weight pipeline from :mod:`flowedit.testing`.
    ``dtype`` (a torch dtype, or ``"float16"``, ``"bfloat16"``, ``"float32"``) defaults to bfloat16 on CUDA and
    float32 on CPU. ``offload=True`` keeps the modules on the CPU and moves each to the GPU only while it runs
    (diffusers' model CPU offload). A model that cannot be loaded is one ``OSError`` line saying why (no such
    folder, not a pipeline folder, not on the hub or in its cache) and how to fetch it.
    """
    if not isinstance(model, str | Path) or not str(model):
        raise ValueError(f"model must be a hub id, a local folder or tiny-<family>, got {short(model)}")
    if not isinstance(offload, bool):
        raise ValueError(f"offload must be True or False, got {short(offload)}")
    model = str(model)
    device = resolve_device(device)
    dtype = default_dtype(device) if dtype is None else as_dtype(dtype)
    shipped = model == "digits-sd3"  # trained weights shipped with the package; a retrained folder has no T5 either
    if shipped or (not model.startswith("tiny-") and family_of_name(model) is FAMILIES["digits-sd3"]):
        folder = {} if shipped else {"folder": model}
        return Editor.from_pipeline(FAMILIES["digits-sd3"].tiny(dtype=dtype, **folder).to(device), model)
    if model.startswith("tiny-"):
        if model[5:] not in FAMILIES:
            names = ", ".join(f"tiny-{name}" for name in FAMILIES)
            raise ValueError(f"no offline model {short(model)}; the offline models are {names}")
        return Editor.from_pipeline(FAMILIES[model[5:]].tiny(dtype=dtype).to(device), model)
    try:
        from diffusers import DiffusionPipeline
    except ImportError as err:
        raise ImportError("flowedit.load needs the models extra: pip install 'flowtoy-flowedit[models]'") from err
    advice = (
        "Pass a local directory that holds the model (model_index.json and its folders), e.g. one made with "
        "`huggingface-cli download <model id> --local-dir DIR` on a machine with access to the hub"
    )
    problem = _local_problem(model)
    if problem is None:
        try:
            pipe = from_pretrained(DiffusionPipeline, model, dtype)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # diffusers' many ways to fail
            problem = _load_problem(model, err)
    if problem is not None:
        shown = repr(model) if len(model) <= 200 else repr(model[:200]) + "..."
        raise OSError(f"could not load the pipeline {shown}: {problem}. {advice}") from None
    if offload and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe = pipe.to(device)
    return Editor.from_pipeline(pipe, model)
