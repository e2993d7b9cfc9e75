"""CPU benchmark of the SD3 and FLUX adapters on the tiny offline pipelines: model calls and where the time goes.

On ``flowedit.testing``'s random-weight pipelines and a 64x64 synthetic image, with SD3 at the reference
defaults (T=50, n_max=33, n_avg=1, guidance 3.5 -> 13.5) and FLUX at its defaults (T=28, n_max=24,
guidance 1.5 -> 5.5), for ``Editor.edit_latents`` and for a straightforward reference loop
(:func:`reference_sd3`, :func:`reference_flux`: the official code's loops) on the same pipeline, latents,
prompt embeddings and noise:

1. transformer calls per edit (ours: ``EditResult.model_calls``, one batched call per step; the reference:
   SD3 one 4-way CFG call per step and draw = n_max * n_avg, FLUX a source and a target call per step
   and draw = 2 * n_max * n_avg), the rows (samples) they process, and seconds per edit split into time
   inside ``pipe.transformer.forward``, the text encoders, the VAE encoder and everything else
   (preprocessing, schedule, integrator, adapter glue, including each ``pipe._execution_device`` lookup,
   which walks every module of the pipeline); the largest difference between the two edits;
2. n_avg = 4: one edit that batches 4 draws per step vs four separate n_avg = 1 edits vs the reference
   loop with 4 draws (transformer time and calls).

Run:  .venv/bin/python benchmarks/bench_models.py [--quick] [--threads 1] [--repeats 3]
(--quick: SD3 T=10, n_max=7; FLUX T=8, n_max=6; one repeat; a smoke run.)
Seconds are the fastest of ``--repeats`` runs taken in turns after one warm-up each. Tiny models are
launch-bound, so the split shows per-call overhead, not what a 1024x1024 edit on a GPU spends
(``benchmarks/gpu_full_size.py`` measures that). :func:`reference_sd3`, :func:`reference_flux`,
:class:`Clock` and :func:`measure` are shared with that script.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from flowedit.models import Editor, EditSettings, flux_timestep, sd3_timestep
from flowedit.models._common import Branch

SOURCE_PROMPT, TARGET_PROMPT = "a photo of a cat sitting in the grass", "a photo of a dog sitting in the grass"


class Clock:
    """Counts the calls of the method ``obj.<name>``, the batch rows they get and the seconds spent inside.

    Use as a context manager: the method is shadowed by an instance attribute that times it and is
    deleted on exit. On CUDA (``cuda=True``) the time is GPU time between CUDA events recorded at entry
    and exit of each call, summed after one synchronize, so timing does not serialize host and device.
    """

    def __init__(self, obj: Any, name: str = "forward", cuda: bool = False):
        self.obj, self.name, self.cuda = obj, name, cuda
        self.reset()

    def reset(self) -> None:
        self.calls, self.rows, self._seconds = 0, 0, 0.0
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []

    @property
    def seconds(self) -> float:
        if not self.cuda:
            return self._seconds
        torch.cuda.synchronize()
        return sum(start.elapsed_time(end) for start, end in self._events) / 1e3

    def __enter__(self) -> Clock:
        original = getattr(self.obj, self.name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            first = kwargs.get("hidden_states", args[0] if args else None)
            self.rows += first.shape[0] if torch.is_tensor(first) else 0
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = original(*args, **kwargs)
                end.record()
                self._events.append((start, end))
                return out
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._seconds += time.perf_counter() - begin

        setattr(self.obj, self.name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        delattr(self.obj, self.name)


@dataclass(frozen=True)
class Timing:
    """One timed run: wall ``seconds``, transformer ``calls``/``rows``/``model`` seconds, other clocks' seconds."""

    seconds: float
    calls: int
    rows: int
    model: float
    parts: dict[str, float]
    peak_bytes: int | None
    output: Any

    @property
    def other(self) -> float:
        """Wall time outside the transformer (text encoders, VAE, integrator, glue)."""
        return self.seconds - self.model


def measure(run: Callable[[], Any], model: Clock, parts: dict[str, Clock] | None = None) -> Timing:
    """Time ``run()`` once: wall clock (synchronized on CUDA), the transformer clock and the ``parts`` clocks."""
    parts = parts or {}
    for clock in (model, *parts.values()):
        clock.reset()
    if model.cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    output = run()
    if model.cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if model.cuda else None
    split = {name: clock.seconds for name, clock in parts.items()}
    return Timing(seconds, model.calls, model.rows, model.seconds, split, peak, output)


def best_of(runs: dict[str, Callable[[], Timing]], repeats: int) -> dict[str, Timing]:
    """The fastest of ``repeats`` runs of each, taken in turns (a slow spell of the machine hits all alike)."""
    best: dict[str, Timing] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            timing = run()
            if name not in best or timing.seconds < best[name].seconds:
                best[name] = timing
    return best


# -- the reference code's loops (FlowEditSD3 / FlowEditFLUX of the official implementation) ---------------
def _draw(x_src: torch.Tensor, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """One noise draw like :func:`flowedit.flowedit`'s (in ``x_src``'s dtype), then cast to the model dtype."""
    return torch.randn_like(x_src, generator=generator).to(dtype)


@torch.no_grad()
def reference_sd3(
    transformer: Any,
    x_src: torch.Tensor,
    ts: torch.Tensor,
    source: Branch,
    target: Branch,
    settings: EditSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """The reference SD3 loop: per step and draw, ONE transformer call on ``[src_u, src_c, tar_u, tar_c]``.

    ``x_src`` (B, C, h, w) latents; ``ts`` the (T + 1,) sigma grid; both branches with CFG rows
    ``[uncond, cond]`` (the reference needs guidance > 1) and ``n_min = 0``. Latents live in the model
    dtype and the update is done in float32 and cast back, as in the reference. Returns (B, C, h, w).
    """
    if source.rows != 2 or target.rows != 2 or settings.n_min != 0:
        raise ValueError("the reference SD3 loop needs CFG on both branches (guidance > 1) and n_min = 0")
    dtype, n_avg = transformer.dtype, settings.n_avg
    embeds = torch.cat([source.embeds, target.embeds])  # (4, L, D): src_u, src_c, tar_u, tar_c
    pooled = torch.cat([source.pooled, target.pooled])  # (4, P)
    x = x_src.to(dtype)
    z = x.clone()
    times = ts.tolist()
    steps = len(times) - 1
    for i in range(steps - settings.n_max, steps):
        t, t_next = times[i], times[i + 1]
        timestep = torch.full((4 * x.shape[0],), sd3_timestep(t), device=x.device)  # float32, like the pipeline
        delta = torch.zeros_like(x)
        for _ in range(n_avg):
            z_src = (1 - t) * x + t * _draw(x_src, generator, dtype)
            z_tar = z + z_src - x
            out = transformer(
                hidden_states=torch.cat([z_src, z_src, z_tar, z_tar]),  # (4B, C, h, w)
                timestep=timestep,
                encoder_hidden_states=embeds.repeat_interleave(x.shape[0], dim=0),
                pooled_projections=pooled.repeat_interleave(x.shape[0], dim=0),
                return_dict=False,
            )[0]
            src_u, src_c, tar_u, tar_c = out.chunk(4)
            v_src = src_u + source.guidance * (src_c - src_u)
            v_tar = tar_u + target.guidance * (tar_c - tar_u)
            delta += (v_tar - v_src) / n_avg
        z = (z.float() + (t_next - t) * delta).to(delta.dtype)
    return z


@torch.no_grad()
def reference_flux(
    transformer: Any,
    x_src: torch.Tensor,
    ts: torch.Tensor,
    source: Branch,
    target: Branch,
    image_ids: torch.Tensor,
    settings: EditSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """The reference FLUX loop: per step and draw, a source call and a target call (batch B each).

    ``x_src`` packed latents (B, L, 4C); ``image_ids`` (L, 3); each branch's guidance scale goes into
    the guidance embedding (when the model has one); ``n_min = 0``. Returns packed latents (B, L, 4C).
    """
    if settings.n_min != 0:
        raise ValueError("the reference FLUX loop here covers n_min = 0")
    dtype, n_avg, batch = transformer.dtype, settings.n_avg, x_src.shape[0]
    device = x_src.device
    embedded = bool(transformer.config.guidance_embeds)
    text_ids = torch.zeros(source.embeds.shape[1], 3, device=device, dtype=dtype)

    def velocity(z: torch.Tensor, branch: Branch, t: float) -> torch.Tensor:
        guidance = torch.full((batch,), branch.guidance, device=device) if embedded else None
        return transformer(
            hidden_states=z,
            timestep=torch.full((batch,), flux_timestep(t), device=device),
            guidance=guidance,
            pooled_projections=branch.pooled.expand(batch, -1),
            encoder_hidden_states=branch.embeds.expand(batch, -1, -1),
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
        )[0]

    x = x_src.to(dtype)
    z = x.clone()
    times = ts.tolist()
    steps = len(times) - 1
    for i in range(steps - settings.n_max, steps):
        t, t_next = times[i], times[i + 1]
        delta = torch.zeros_like(x)
        for _ in range(n_avg):
            z_src = (1 - t) * x + t * _draw(x_src, generator, dtype)
            z_tar = z + z_src - x
            delta += (velocity(z_tar, target, t) - velocity(z_src, source, t)) / n_avg
        z = (z.float() + (t_next - t) * delta).to(delta.dtype)
    return z


# -- this script's CPU runs -------------------------------------------------------------------------------
def synthetic_image(size: int = 64) -> Any:
    """A deterministic RGB test image: two gradients and a checkerboard, ``size`` x ``size``."""
    from PIL import Image

    ramp = np.linspace(0, 255, size)
    red, green = np.broadcast_to(ramp[None, :], (size, size)), np.broadcast_to(ramp[:, None], (size, size))
    blue = 255 * ((np.arange(size)[:, None] // 8 + np.arange(size)[None, :] // 8) % 2)
    return Image.fromarray(np.stack([red, green, blue], axis=-1).astype(np.uint8))


def reference_edit(editor: Editor, image: Any, settings: EditSettings) -> torch.Tensor:
    """The reference loop on ``editor``'s pipeline, after the same preprocessing, VAE and prompt encoding."""
    adapter, pipe = editor.adapter, editor.pipe
    image = editor.load_image(image)
    x, _ = adapter.encode_image(pipe.image_processor.preprocess(image))
    ts = adapter.timesteps(settings.steps, x)
    source = adapter.encode_prompt(SOURCE_PROMPT, settings.src_guidance)
    target = adapter.encode_prompt(TARGET_PROMPT, settings.tar_guidance)
    generator = torch.Generator(device=x.device).manual_seed(settings.seed)
    if adapter.kind == "sd3":
        return reference_sd3(pipe.transformer, x, ts, source, target, settings, generator)
    side = 2 * pipe.vae_scale_factor  # pixels per packed token side
    ids = pipe._prepare_latent_image_ids(1, image.height // side, image.width // side, x.device, adapter.dtype)
    return reference_flux(pipe.transformer, x, ts, source, target, ids, settings, generator)


def clocks(editor: Editor) -> tuple[Clock, dict[str, Clock]]:
    """The transformer clock and clocks on the text encoders' forwards and the VAE's ``encode``."""
    pipe = editor.pipe
    encoders = [getattr(pipe, name, None) for name in ("text_encoder", "text_encoder_2", "text_encoder_3")]
    parts = {f"text{i}": Clock(m) for i, m in enumerate(encoders) if m is not None}
    return Clock(pipe.transformer), {**parts, "vae": Clock(pipe.vae, "encode")}


def timed_runs(editor: Editor, image: Any, settings: EditSettings, repeats: int) -> dict[str, Timing]:
    model, parts = clocks(editor)
    with contextlib.ExitStack() as stack:
        for clock in (model, *parts.values()):
            stack.enter_context(clock)

        def ours(s: EditSettings = settings) -> Timing:
            timing = measure(lambda: editor.edit_latents(image, SOURCE_PROMPT, TARGET_PROMPT, s), model, parts)
            assert timing.output.model_calls == timing.calls, "EditResult.model_calls != transformer calls"
            return replace(timing, output=timing.output.edited)

        def reference() -> Timing:
            return measure(lambda: reference_edit(editor, image, settings), model, parts)

        def four_single() -> Timing:
            runs = [ours(replace(settings, n_avg=1, seed=settings.seed + k)) for k in range(4)]
            total = sum(r.seconds for r in runs)
            split = {key: sum(r.parts[key] for r in runs) for key in runs[0].parts}
            calls, rows, model_s = (sum(getattr(r, key) for r in runs) for key in ("calls", "rows", "model"))
            return Timing(total, calls, rows, model_s, split, None, runs[0].output)

        runs: dict[str, Callable[[], Timing]] = {"ours": ours, "reference": reference}
        if settings.n_avg > 1:
            runs["4 x n_avg=1"] = four_single
        for run in runs.values():  # warm-up
            run()
        return best_of(runs, repeats)


LABELS = {
    "ours": "Editor.edit_latents",
    "reference": "reference loop",
    "4 x n_avg=1": "ours, 4 edits n_avg=1",
}


def print_table(results: dict[str, Timing], reference_calls: int) -> None:
    head = f"{'implementation':<24} {'calls':>6} {'rows':>6} {'s/edit':>8} {'model s':>8} {'text s':>7}"
    print(head + f" {'VAE s':>7} {'rest s':>7} {'other %':>8}")
    for name, r in results.items():
        text = sum(v for k, v in r.parts.items() if k.startswith("text"))
        rest = r.other - text - r.parts["vae"]
        print(
            f"{LABELS[name]:<24} {r.calls:>6} {r.rows:>6} {r.seconds:>8.3f} {r.model:>8.3f} {text:>7.3f}"
            f" {r.parts['vae']:>7.3f} {rest:>7.3f} {100 * r.other / r.seconds:>7.1f}%"
        )
    ours = results["ours"]
    print(f"reference's count: {reference_calls} calls; ours {ours.calls}")
    if "reference" in results:
        ref = results["reference"].output.float()
        diff = (ours.output - ref).abs().max().item()
        scale = ours.output.abs().max().item()
        print(f"max |ours - reference| = {diff:.2e} (max |edit| = {scale:.2f})")
        # float32 on CPU: the same algorithm, noise and model, summed in another order
        assert diff <= 1e-5 * max(1.0, scale), f"the edit differs from the reference loop by {diff:.2e}"


def section(name: str, editor: Editor, settings: EditSettings, repeats: int) -> None:
    image = synthetic_image()
    per_draw = 1 if name == "SD3" else 2  # reference calls per step and draw
    s = settings
    print(
        f"\n{name}: T={s.steps}, n_max={s.n_max}, n_avg={s.n_avg}, guidance {s.src_guidance} -> {s.tar_guidance},"
        f" 64x64 image, best of {repeats}"
    )
    print_table(timed_runs(editor, image, s, repeats), per_draw * s.n_max * s.n_avg)
    s4 = replace(s, n_avg=4)
    print(f"\n{name}, n_avg = 4 (4 draws per step) vs four n_avg = 1 edits")
    print_table(timed_runs(editor, image, s4, repeats), per_draw * s4.n_max * s4.n_avg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps and one repeat: a smoke run")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (default 3; 1 with --quick)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats

    from flowedit import testing

    print(f"torch {torch.__version__}, threads = {torch.get_num_threads()}, float32, tiny random-weight pipelines")
    for name, build, quick in (
        ("SD3", testing.tiny_sd3_pipeline, {"steps": 10, "n_max": 7}),
        ("FLUX", testing.tiny_flux_pipeline, {"steps": 8, "n_max": 6}),
    ):
        editor = Editor.from_pipeline(build())
        section(name, editor, editor.settings(**(quick if args.quick else {})), repeats)


if __name__ == "__main__":
    main()
