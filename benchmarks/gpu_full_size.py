"""Full-size SD3-medium and FLUX.1-dev edits on a CUDA GPU with RANDOM weights (no download): speed and memory.

Builds the SD3-medium ``SD3Transformer2DModel`` and the FLUX.1-dev ``FluxTransformer2DModel`` architectures
directly in bfloat16 on the GPU, plus a full-size 16-channel ``AutoencoderKL`` with each model's
shift/scaling factors. No text encoders: random prompt embeddings of the real shapes (SD3 (1, 333, 4096)
and pooled (1, 2048) per CFG row; FLUX (1, 512, 4096) and pooled (1, 768)) go into
``flowedit.models._common.Branch`` objects, and the adapters run on a pipe-like namespace holding
exactly what they use. On the latents of a random 1024x1024 image (SD3 (1, 16, 128, 128), FLUX packed
(1, 4096, 64)) at the reference defaults (SD3 T=50, n_max=33, guidance 3.5 -> 13.5; FLUX T=28,
n_max=24, guidance 1.5 -> 5.5) it measures, for ``flowedit.flowedit`` with the adapter's batched
``velocity_pair`` and for the reference loop on the same model, latents, embeddings and noise
(SD3: one 4-way CFG call per step and draw; FLUX: a source and a target call per step and draw):

- seconds per edit (synchronized), transformer calls and rows, GPU time inside the transformer
  (CUDA events) and the rest of the wall time, peak GPU memory (``torch.cuda.max_memory_allocated``);
- one step with n_avg = 4: one batched call vs four n_avg = 1 steps vs the reference's 4 draws;
- the VAE encode and decode of the image (time and peak memory).

The pipe-like namespace answers ``_execution_device`` for free, while a real ``DiffusionPipeline`` walks
all its modules on each access (about 9 ms on the full SD3 / FLUX pipelines with their text encoders;
the adapters ask several times per step), so "other" here is a lower bound for a real pipeline
(``benchmarks/bench_models.py`` runs real, tiny pipelines). In bfloat16 the two edits differ beyond
rounding: the adapter keeps float32 latents (and gives SD3 a bfloat16 timestep), the reference loop
bfloat16 latents (and a float32 SD3 timestep, like diffusers' pipeline).

Run on a machine with a CUDA GPU (about 30 GB of GPU memory for FLUX; a few minutes):
    python benchmarks/gpu_full_size.py [--models sd3 flux] [--repeats 1]
Check the same code path on CPU with the tiny configs of ``flowedit.testing`` (64x64 image, float32):
    .venv/bin/python benchmarks/gpu_full_size.py --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from bench_models import Clock, Timing, best_of, measure, reference_flux, reference_sd3  # same folder

import flowedit
from flowedit.models import DEFAULTS, FAMILIES, Adapter, EditSettings
from flowedit.models._common import Branch

SD3_MEDIUM = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "out_channels": 16,
    "pos_embed_max_size": 192,
}
FLUX_DEV = {
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": (16, 56, 56),
}
VAE_16 = {  # the SD3 / FLUX autoencoder: factor 8, 16 latent channels, no quant convs
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}
VAE_FACTORS = {
    "sd3": {"scaling_factor": 1.5305, "shift_factor": 0.0609},
    "flux": {"scaling_factor": 0.3611, "shift_factor": 0.1159},
}
TEXT_TOKENS = {"sd3": 77 + 256, "flux": 512}  # SD3: CLIP 77 + T5 256 tokens; FLUX: T5 512 tokens
FLUX_SCHEDULER = {
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
GB = 1024**3


@contextlib.contextmanager
def building(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly on ``device`` in ``dtype`` (no float32 copy on the CPU first)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(default)


@dataclass(frozen=True)
class Case:
    """One model ready to edit: adapter, source latents ``x``, grid ``ts``, the two prompts' branches."""

    name: str
    adapter: Adapter
    x: torch.Tensor
    layout: Any
    ts: torch.Tensor
    source: Branch
    target: Branch
    image_ids: torch.Tensor | None
    settings: EditSettings
    pixels: torch.Tensor


def build_case(kind: str, tiny: bool, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Case:
    """Build the model ``kind`` ("sd3" or "flux"), encode a random image and random prompt embeddings."""
    import diffusers

    if tiny:
        from flowedit import testing

        build = testing.tiny_sd3_pipeline if kind == "sd3" else testing.tiny_flux_pipeline
        pipe = build(seed, dtype=dtype)
        transformer, vae, scheduler, size = pipe.transformer, pipe.vae, pipe.scheduler, 64
    else:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()]), building(device, dtype):
            torch.manual_seed(seed)  # the random weights; the global generator is restored on exit
            if kind == "sd3":
                transformer = diffusers.SD3Transformer2DModel(**SD3_MEDIUM)
            else:
                transformer = diffusers.FluxTransformer2DModel(**FLUX_DEV)
            vae = diffusers.AutoencoderKL(**VAE_16, **VAE_FACTORS[kind])
        for module in (transformer, vae):  # float32 buffers (SD3's pos_embed) too, as a bfloat16 load has them
            torch.nn.Module.to(module, dtype)
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler(**({"shift": 3.0} if kind == "sd3" else FLUX_SCHEDULER))
        size = 1024
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    pipe = types.SimpleNamespace(  # exactly what the adapters read from a pipeline
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        vae_scale_factor=vae_scale_factor,
        _execution_device=device,
        _prepare_latent_image_ids=diffusers.FluxPipeline._prepare_latent_image_ids,
        _pack_latents=diffusers.FluxPipeline._pack_latents,
    )
    adapter = Adapter(pipe, FAMILIES[kind])
    settings = DEFAULTS[kind]
    gen = torch.Generator(device=device).manual_seed(seed)
    pixels = torch.rand(1, 3, size, size, generator=gen, device=device) * 2 - 1  # (1, 3, H, W) in [-1, 1]
    x, layout = adapter.encode_image(pixels)
    config = transformer.config
    width, pooled = config.joint_attention_dim, config.pooled_projection_dim

    def branch(guidance: float) -> Branch:
        rows = 2 if kind == "sd3" and guidance > 1 else 1  # SD3: [uncond, cond] rows
        embeds = torch.randn(rows, TEXT_TOKENS[kind], width, generator=gen, device=device).to(dtype)
        return Branch(embeds, torch.randn(rows, pooled, generator=gen, device=device).to(dtype), guidance)

    ids = None
    if kind == "flux":
        side = size // (2 * vae_scale_factor)  # packed tokens per side
        ids = pipe._prepare_latent_image_ids(1, side, side, device, dtype)  # (L, 3)
    source, target = branch(settings.src_guidance), branch(settings.tar_guidance)
    name = ("tiny " if tiny else "") + ("SD3-medium" if kind == "sd3" else "FLUX.1-dev")
    return Case(name, adapter, x, layout, adapter.timesteps(settings.steps, x), source, target, ids, settings, pixels)


def ours(case: Case, settings: EditSettings) -> torch.Tensor:
    """FlowEdit through the shared integrator and the adapter's batched velocity pair."""
    generator = torch.Generator(device=case.x.device).manual_seed(settings.seed)
    pair = case.adapter.velocity_pair(case.source, case.target, case.layout)
    s = settings
    return flowedit.flowedit(case.x, pair, case.ts, n_max=s.n_max, n_min=s.n_min, n_avg=s.n_avg, generator=generator)


def reference(case: Case, settings: EditSettings) -> torch.Tensor:
    """The reference code's loop on the same model, latents, embeddings and noise."""
    generator = torch.Generator(device=case.x.device).manual_seed(settings.seed)
    transformer = case.adapter.pipe.transformer
    if case.adapter.kind == "sd3":
        return reference_sd3(transformer, case.x, case.ts, case.source, case.target, settings, generator)
    return reference_flux(transformer, case.x, case.ts, case.source, case.target, case.image_ids, settings, generator)


def print_table(title: str, results: dict[str, Timing], cuda: bool) -> None:
    print(f"\n{title}")
    print(f"{'run':<34} {'calls':>6} {'rows':>6} {'s':>8} {'model s':>8} {'other s':>8} {'other %':>8} {'peak GB':>8}")
    for name, r in results.items():
        peak = f"{r.peak_bytes / GB:>8.2f}" if r.peak_bytes is not None else f"{'n/a':>8}"
        print(
            f"{name:<34} {r.calls:>6} {r.rows:>6} {r.seconds:>8.3f} {r.model:>8.3f} {r.other:>8.3f}"
            f" {100 * r.other / r.seconds:>7.1f}% {peak}"
        )


def run_case(case: Case, repeats: int, cuda: bool) -> None:
    s, adapter = case.settings, case.adapter
    transformer = adapter.pipe.transformer
    resident = f"{torch.cuda.memory_allocated() / GB:.2f} GB" if cuda else "n/a"
    params = sum(p.numel() for p in transformer.parameters()) / 1e6
    print(
        f"\n== {case.name}: transformer {params:,.1f} M parameters ({transformer.dtype}), resident {resident};"
        f" image {tuple(case.pixels.shape)} -> latents {tuple(case.x.shape)}; text tokens {TEXT_TOKENS[adapter.kind]}"
    )
    with Clock(transformer, cuda=cuda) as model:
        short = replace(s, n_max=2)  # warm-up: kernels, allocator, autotuning
        ours(case, short)
        reference(case, short)

        def timed(fn: Callable[[Case, EditSettings], torch.Tensor], settings: EditSettings) -> Callable[[], Timing]:
            return lambda: measure(lambda: fn(case, settings), model)

        per_draw = 1 if adapter.kind == "sd3" else 2
        edit = best_of(
            {
                "flowedit + adapter.velocity_pair": timed(ours, s),
                f"reference ({per_draw} call(s) per draw)": timed(reference, s),
            },
            repeats,
        )
        a, b = (r.output.float() for r in edit.values())
        print_table(
            f"one edit: T={s.steps}, n_max={s.n_max}, n_avg={s.n_avg}, guidance {s.src_guidance} -> {s.tar_guidance}"
            f" (reference count {per_draw * s.n_max * s.n_avg} calls); max |ours - reference| = "
            f"{(a - b).abs().max().item():.3g} (max |edit| {a.abs().max().item():.3g})",
            edit,
            cuda,
        )

        one, four = replace(s, n_max=1, n_avg=1), replace(s, n_max=1, n_avg=4)

        def sequential() -> Timing:
            return measure(lambda: [ours(case, replace(one, seed=s.seed + k)) for k in range(4)], model)

        step = best_of(
            {
                "ours, one call with n_avg=4": timed(ours, four),
                "ours, 4 sequential n_avg=1 steps": sequential,
                "reference, 4 draws": timed(reference, four),
            },
            repeats,
        )
        print_table("one step, 4 noise draws", step, cuda)

        def encode() -> Timing:
            return measure(lambda: adapter.encode_image(case.pixels), model)

        def decode() -> Timing:
            return measure(lambda: adapter.decode_latents(case.x, case.layout), model)

        vae_runs = best_of({"VAE encode": encode, "VAE decode": decode}, repeats)
        print(f"\n{'VAE':<34} {'s':>8} {'peak GB':>8}")
        for name, r in vae_runs.items():
            peak = f"{r.peak_bytes / GB:>8.2f}" if r.peak_bytes is not None else f"{'n/a':>8}"
            print(f"{name:<34} {r.seconds:>8.3f} {peak}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs on the CPU in float32 (a check of the code)")
    parser.add_argument("--models", nargs="+", choices=("sd3", "flux"), default=["sd3", "flux"])
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per case; the fastest is shown")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads with --tiny (default 1)")
    parser.add_argument(
        "--dtype",
        choices=("bfloat16", "float32"),
        help="model dtype (default: bfloat16 on the GPU, float32 with --tiny)",
    )
    args = parser.parse_args()
    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        sys.exit(
            "gpu_full_size.py needs a CUDA GPU: torch.cuda.is_available() is False on this machine. "
            "Run it where a GPU is lent, or pass --tiny to check the same code path on the CPU with tiny models."
        )
    if args.tiny:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if cuda else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    where = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"torch {torch.__version__}, {where}, {dtype}, random weights")
    for kind in args.models:
        start = time.perf_counter()
        case = build_case(kind, args.tiny, device, dtype)
        print(f"\nbuilt {case.name} in {time.perf_counter() - start:.1f} s")
        run_case(case, args.repeats, cuda)
        del case
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
