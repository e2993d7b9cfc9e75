"""``digits-sd3``: a real ``StableDiffusion3Pipeline`` whose VAE and transformer are trained here on 8x8 digits.

The rung between the exact 64-D digits of :mod:`flowtoy.digits` and SD3 at full size: the same images, the same
train / held-out split, the same classifier, but a *learned* velocity inside the real pipeline class.

- **Images**: scikit-learn's digits of :func:`flowtoy.digits.load` (train split only; held-out images are never
  seen), grey levels ``0..16`` as 8-bit grey ``round(255 level / 16)``, scaled x4 to 32x32 with PIL's bilinear
  resize, grey as RGB (:func:`render`). Back to the classifier's 8x8: :func:`to_digits` box-averages 4x4 blocks.
- **VAE** (:data:`VAE`): ``AutoencoderKL``, blocks 16 / 32 / 32 channels (factor 4), one layer per block, 4 latent
  channels: a 32x32 image is a (4, 8, 8) latent. Trained on ``|x - decode(z)|^2 + beta KL`` with ``z`` drawn from the
  posterior; ``shift_factor`` and ``scaling_factor`` are then set to the mean and 1/std of the train latents.
- **Text**: the frozen tiny random CLIP encoders of :mod:`flowedit.testing.parts` (widths 32 and 48, 2 layers) with
  a 16-token CLIP tokenizer and no T5 (SD3's pipeline then fills the T5 part with zeros, :data:`T5_TOKENS` long):
  a prompt is 17 tokens of width 80 plus a pooled vector of 80. The transformer learns to read the fixed embeddings
  of ``"a handwritten 0"`` ... ``"a handwritten 9"`` (:data:`PROMPT`) and of the empty prompt.
- **Transformer** (:data:`TRANSFORMER`): ``SD3Transformer2DModel``, 4 joint blocks, 4 heads x 32 = width 128,
  patch 2 (16 image tokens), trained with rectified flow (DESIGN.md's convention): ``z_t = (1 - t) x0 + t eps``,
  target ``eps - x0`` at ``timestep = 1000 t`` with ``t`` logit-normal (SD3's training density), the prompt
  replaced by the empty one with probability :attr:`TrainSettings.drop` (classifier-free guidance).

Weights are saved in float16. Training sees the float16-rounded text encoders and VAE, so the shipped pipeline,
loaded in float32, gives the transformer exactly the inputs it was trained on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..models._digits import T5_TOKENS

__all__ = [
    "PROMPT",
    "SIDE",
    "T5_TOKENS",
    "TrainSettings",
    "Trained",
    "build",
    "pixels",
    "prompts",
    "render",
    "save",
    "to_digits",
    "train",
    "train_transformer",
    "train_vae",
]

SIDE = 32  # pixels per image side
PROMPT = "a handwritten {}"
CLIP_TOKENS = 16  # "a handwritten 3" is 15 CLIP tokens with its start and end
VAE = dict(block_out_channels=(16, 32, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8)
TRANSFORMER = dict(
    sample_size=8,
    patch_size=2,
    in_channels=4,
    out_channels=4,
    num_layers=4,
    attention_head_dim=32,
    num_attention_heads=4,
    joint_attention_dim=80,  # CLIP-L + CLIP-G widths, 32 + 48; no T5
    caption_projection_dim=128,  # the width, heads x head dim
    pooled_projection_dim=80,
    pos_embed_max_size=16,  # up to 16 x 16 patches: 128 x 128 pixels
)


@dataclass(frozen=True)
class TrainSettings:
    """Everything :func:`train` does, fixed by ``seed``: steps, batch sizes, learning rates (AdamW, linear warm-up
    over ``warmup`` steps then cosine to 0), the VAE's KL weight ``beta`` and the prompt dropout ``drop``."""

    seed: int = 0
    vae_steps: int = 300
    vae_lr: float = 1e-3
    beta: float = 1e-5
    steps: int = 1500
    lr: float = 1e-3
    warmup: int = 100
    batch: int = 64
    drop: float = 0.1


def render(levels) -> np.ndarray:
    """Digits ``levels`` (N, 64) in ``[-1, 1]`` (:func:`flowtoy.digits.load`'s scale) -> uint8 RGB (N, 32, 32, 3):
    8-bit grey scaled x4 with PIL's bilinear resize."""
    from PIL import Image

    grey = np.rint((np.asarray(levels, dtype=np.float64).reshape(-1, 8, 8) + 1.0) * 127.5).astype(np.uint8)
    big = [np.asarray(Image.fromarray(g).resize((SIDE, SIDE), Image.BILINEAR)) for g in grey]
    return np.repeat(np.stack(big)[..., None], 3, axis=-1)


def to_digits(images) -> torch.Tensor:
    """Images (N, 32, 32, 3) uint8, or (N, 3, 32, 32) floats in ``[-1, 1]`` -> (N, 64) float64 in ``[-1, 1]``:
    the channel mean box-averaged over 4x4 blocks, the classifier's input (:func:`flowtoy.digits.classify`)."""
    x = torch.as_tensor(np.array(images) if not torch.is_tensor(images) else images).double()
    if x.shape[-1] == 3:  # uint8 (N, H, W, 3) -> (N, 3, H, W) in [-1, 1]
        x = x.permute(0, 3, 1, 2) / 127.5 - 1.0
    grey = x.mean(dim=1)  # (N, 32, 32)
    return grey.reshape(-1, 8, SIDE // 8, 8, SIDE // 8).mean(dim=(2, 4)).reshape(-1, 64)


def pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB (N, 32, 32, 3) -> float32 (N, 3, 32, 32) in ``[-1, 1]``, as the pipeline's image processor."""
    return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous()


def build(seed: int = 0):
    """The untrained pipeline: random VAE and transformer, the frozen tiny CLIP encoders, SD3's scheduler."""
    from ..testing.parts import clip_config, clip_tokenizer, import_models, ready, seeded

    diffusers, transformers, tokenizers = import_models()
    with seeded(seed):
        tokenizer, tokenizer_2 = (clip_tokenizer(transformers, tokenizers) for _ in range(2))
        for t in (tokenizer, tokenizer_2):
            t.model_max_length = CLIP_TOKENS
        modules = {
            "transformer": diffusers.SD3Transformer2DModel(**TRANSFORMER),
            "vae": diffusers.AutoencoderKL(
                down_block_types=("DownEncoderBlock2D",) * 3,
                up_block_types=("UpDecoderBlock2D",) * 3,
                sample_size=SIDE,
                use_quant_conv=False,
                use_post_quant_conv=False,
                **VAE,
            ),
            "text_encoder": transformers.CLIPTextModelWithProjection(
                clip_config(transformers, tokenizer, 32, "quick_gelu")
            ),
            "text_encoder_2": transformers.CLIPTextModelWithProjection(
                clip_config(transformers, tokenizer_2, 48, "gelu")
            ),
        }
    ready(modules, torch.float16)  # train on what is shipped: float16-rounded encoders
    ready(modules, torch.float32)
    return diffusers.StableDiffusion3Pipeline(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        text_encoder_3=None,
        tokenizer_3=None,
        **modules,
    )


def _schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=not progress)


def train_vae(vae, x: torch.Tensor, s: TrainSettings, generator: torch.Generator, progress: bool = True) -> list:
    """Fit ``vae`` to images ``x`` (N, 3, 32, 32) in ``[-1, 1]``; returns the loss of each step."""
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=s.vae_lr, weight_decay=0.0)
    losses = []
    with _bar(s.vae_steps, "vae", progress) as bar:
        for step in range(s.vae_steps):
            for group in opt.param_groups:
                group["lr"] = s.vae_lr * _schedule(step, s.vae_steps, s.warmup)
            batch = x[torch.randint(len(x), (s.batch,), generator=generator)]
            posterior = vae.encode(batch).latent_dist
            z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
            mse = (vae.decode(z).sample - batch).square().mean()
            loss = mse + s.beta * posterior.kl().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(mse.item())
            bar.update(1)
            bar.set_postfix(mse=f"{mse.item():.4f}")
    vae.eval()
    return losses


def train_transformer(
    transformer, latents: torch.Tensor, labels: torch.Tensor, text, s: TrainSettings, generator, progress=True
) -> list:
    """Rectified-flow training of ``transformer`` on normalised ``latents`` (N, 4, 8, 8) of digits ``labels`` (N,).

    ``text = (embeds (11, L, 80), pooled (11, 80))``: rows 0..9 the class prompts, row 10 the empty prompt, used
    with probability ``s.drop``. Returns the loss of each step.
    """
    transformer.train()
    opt = torch.optim.AdamW(transformer.parameters(), lr=s.lr, weight_decay=0.0)
    embeds, pooled = text
    losses = []
    with _bar(s.steps, "transformer", progress) as bar:
        for step in range(s.steps):
            for group in opt.param_groups:
                group["lr"] = s.lr * _schedule(step, s.steps, s.warmup)
            index = torch.randint(len(latents), (s.batch,), generator=generator)
            x0, row = latents[index], labels[index].clone()
            row[torch.rand(s.batch, generator=generator) < s.drop] = 10
            t = torch.sigmoid(torch.randn(s.batch, generator=generator))  # logit-normal(0, 1)
            eps = torch.randn(x0.shape, generator=generator)
            zt = (1 - t[:, None, None, None]) * x0 + t[:, None, None, None] * eps
            v = transformer(
                hidden_states=zt,
                timestep=1000.0 * t,  # SD3's timestep map
                encoder_hidden_states=embeds[row],
                pooled_projections=pooled[row],
                return_dict=False,
            )[0]
            loss = (v - (eps - x0)).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    transformer.eval()
    return losses


@torch.no_grad()
def prompts(pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """The 11 training conditions: ``"a handwritten 0"`` ... ``"a handwritten 9"`` and ``""``, as the pipeline
    encodes them: embeds (11, 16 + T5_TOKENS, 80) and pooled (11, 80)."""
    texts = [PROMPT.format(d) for d in range(10)] + [""]
    embeds, _, pooled, _ = pipe.encode_prompt(
        prompt=texts, prompt_2=None, prompt_3=None, do_classifier_free_guidance=False, max_sequence_length=T5_TOKENS
    )
    return embeds, pooled


@dataclass(frozen=True)
class Trained:
    """A trained pipeline and its record: per-step losses, wall and CPU seconds."""

    pipe: object
    vae_losses: list
    losses: list
    wall_s: float
    cpu_s: float


def train(settings: TrainSettings = TrainSettings(), progress: bool = True) -> Trained:
    """Train the VAE, then the transformer, from scratch with ``settings`` (one ``torch.Generator`` seeded with
    ``settings.seed`` draws every batch, noise and time). Returns the float32 pipeline, float16-rounded."""
    from flowtoy import digits as flowtoy_digits

    wall, cpu = time.perf_counter(), time.process_time()
    generator = torch.Generator().manual_seed(settings.seed)
    pipe = build(settings.seed)
    levels, labels = flowtoy_digits.load("train")
    x = pixels(render(levels.numpy()))
    vae_losses = train_vae(pipe.vae, x, settings, generator, progress)
    torch.nn.Module.to(pipe.vae, torch.float16)  # what is shipped
    torch.nn.Module.to(pipe.vae, torch.float32)
    with torch.no_grad():
        posterior = pipe.vae.encode(x).latent_dist
        shift, scale = posterior.mean.mean().item(), 1.0 / posterior.mean.std().item()
    pipe.vae.register_to_config(shift_factor=round(shift, 4), scaling_factor=round(scale, 4))
    mean = (posterior.mean - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor  # (N, 4, 8, 8)
    # one posterior draw per image and step would cost an encoder pass; the posterior mean is what edits encode
    losses = train_transformer(pipe.transformer, mean, labels, prompts(pipe), settings, generator, progress)
    torch.nn.Module.to(pipe.transformer, torch.float16)
    torch.nn.Module.to(pipe.transformer, torch.float32)
    return Trained(pipe, vae_losses, losses, time.perf_counter() - wall, time.process_time() - cpu)


def save(pipe, folder: str | Path) -> None:
    """Write ``pipe`` as a diffusers folder with float16 safetensors (its modules are cast to float16 in place)."""
    torch.nn.Module.to(pipe.transformer, torch.float16)
    for name in ("vae", "text_encoder", "text_encoder_2"):
        torch.nn.Module.to(getattr(pipe, name), torch.float16)
    pipe.save_pretrained(str(folder), safe_serialization=True)
