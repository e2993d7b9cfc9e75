"""A full-size Wan 2.1 T2V 1.3B video edit on a CUDA GPU with RANDOM weights (no download): speed and memory.

Builds the Wan 2.1 1.3B ``WanTransformer3DModel`` (30 blocks, 12 heads x 128, FFN 8960) and the Wan 2.1
``AutoencoderKLWan`` (diffusers' default config) directly in bfloat16 on the GPU. No text encoder: random
UMT5-shaped prompt embeddings, (2, 512, 4096) per branch ([negative, prompt] rows), go into
``flowedit.models._common.Branch`` objects, and :class:`~flowedit.models.Adapter` runs on a pipe-like
namespace holding exactly what it reads. On a random clip of 33 frames at 480x832 (latents (1, 16, 9, 60, 104),
9 x 30 x 52 = 14040 tokens per row) at the family defaults (50 steps, n_max 35, guidance 2.5 -> 10) it measures:

- the VAE encode of the clip and the decode of the edit: seconds and peak GPU memory;
- the edit (``flowedit.flowedit`` with the adapter's batched velocity pair, one 4-row call per step):
  seconds, transformer calls, rows per call, GPU time inside the transformer (CUDA events), peak GPU memory
  (``torch.cuda.max_memory_allocated``).

Run on a machine with a CUDA GPU (a few minutes):
    python benchmarks/gpu_wan.py [--frames 33] [--height 480] [--width 832] [--repeats 1]
Check the same code path on CPU with the tiny Wan of ``flowedit.testing`` (9 frames of 32x40, float32):
    .venv/bin/python benchmarks/gpu_wan.py --tiny
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import torch
from bench_models import Clock, best_of, measure  # same folder
from gpu_full_size import GB, building

import flowedit
from flowedit.models import DEFAULTS, FAMILIES, Adapter
from flowedit.models._common import Branch

WAN21_1_3B = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
}
TEXT_TOKENS = 512


def build(tiny: bool, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """The adapter on a pipe-like namespace: full-size (random weights, on ``device``) or the tiny pipeline's."""
    import diffusers

    if tiny:
        from flowedit import testing

        pipe = testing.tiny_wan_pipeline(seed, dtype=dtype)
        transformer, vae, scheduler = pipe.transformer, pipe.vae, pipe.scheduler
    else:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()]), building(device, dtype):
            torch.manual_seed(seed)
            transformer = diffusers.WanTransformer3DModel(**WAN21_1_3B)
            vae = diffusers.AutoencoderKLWan()  # diffusers' defaults are Wan 2.1's VAE
        for module in (transformer, vae):
            torch.nn.Module.to(module, dtype)
        scheduler = diffusers.UniPCMultistepScheduler(
            num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        )
    transformer.eval().requires_grad_(False)
    vae.eval().requires_grad_(False)
    pipe = types.SimpleNamespace(  # exactly what the adapter reads from a Wan pipeline
        transformer=transformer,
        transformer_2=None,
        config={"boundary_ratio": None},
        vae=vae,
        scheduler=scheduler,
        vae_scale_factor_spatial=vae.config.scale_factor_spatial,
        vae_scale_factor_temporal=vae.config.scale_factor_temporal,
        _execution_device=device,
    )
    return Adapter(pipe, FAMILIES["wan"])


def timed(run, cuda: bool):
    """``(output, seconds, peak bytes or None)`` of ``run()``, synchronized on CUDA."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = run()
    if cuda:
        torch.cuda.synchronize()
    return output, time.perf_counter() - start, torch.cuda.max_memory_allocated() if cuda else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny Wan on the CPU, float32 (checks the code)")
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        sys.exit("gpu_wan.py: no CUDA GPU here; run with --tiny to check the code on the CPU")
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    frames, height, width = (9, 32, 40) if args.tiny else (args.frames, args.height, args.width)
    adapter = build(args.tiny, device, dtype)
    settings = DEFAULTS["wan"]
    gen = torch.Generator(device=device).manual_seed(0)
    pixels = torch.rand(1, 3, frames, height, width, generator=gen, device=device) * 2 - 1
    (x, layout), encode_s, encode_peak = timed(lambda: adapter.encode_image(pixels), cuda)

    def branch(guidance: float) -> Branch:
        width_ = adapter.pipe.transformer.config.text_dim
        embeds = torch.randn(2, TEXT_TOKENS, width_, generator=gen, device=device).to(dtype)
        return Branch(embeds, None, guidance)

    source, target = branch(settings.src_guidance), branch(settings.tar_guidance)
    ts = adapter.timesteps(settings.steps, x)
    clock = Clock(adapter.pipe.transformer, cuda=cuda)

    def edit():
        pair = adapter.velocity_pair(source, target, layout)
        generator = torch.Generator(device=device).manual_seed(settings.seed)
        with clock:
            return flowedit.flowedit(
                x, pair, ts, n_max=settings.n_max, n_min=settings.n_min, n_avg=settings.n_avg, generator=generator
            )

    timing = best_of({"edit": lambda: measure(edit, clock)}, args.repeats)["edit"]
    pixels_out, decode_s, decode_peak = timed(lambda: adapter.decode_latents(timing.output, layout), cuda)
    name = (
        "tiny Wan (CPU)" if args.tiny else f"Wan 2.1 1.3B architecture, random weights, {torch.cuda.get_device_name()}"
    )
    print(f"{name}: {frames} frames of {width}x{height}, latents {tuple(x.shape)}, {str(dtype).removeprefix('torch.')}")
    print(
        f"settings: {settings.steps} steps, n_max {settings.n_max}, guidance {settings.src_guidance} -> {settings.tar_guidance}"
    )

    def memory(peak: int | None) -> str:
        return "" if peak is None else f", peak {peak / GB:.2f} GB"

    print(f"VAE encode: {encode_s:.2f} s{memory(encode_peak)}")
    print(
        f"edit: {timing.seconds:.2f} s, {timing.calls} transformer calls of {timing.rows // max(timing.calls, 1)} rows, "
        f"{timing.model:.2f} s in the transformer{memory(timing.peak_bytes)}"
    )
    print(f"VAE decode: {decode_s:.2f} s{memory(decode_peak)}; decoded {tuple(pixels_out.shape)}")


if __name__ == "__main__":
    main()
