"""The ``flowedit`` command line: one edit (``flowedit edit``) or a batch file (``flowedit run``).

Bad input (settings, batch file, missing image, unloadable model) exits with status 2 and one line
on stderr, before any model is loaded where possible; ``flowedit run`` exits with 1 if any edit failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

__all__ = ["main"]

DTYPES = ("float32", "bfloat16", "float16")


def model_kind(model: str) -> str | None:
    """``"sd3"`` or ``"flux"`` from a model name or a local directory's model_index.json; None if unknown."""
    if model in ("tiny-sd3", "tiny-flux"):
        return model[5:]
    index = Path(model) / "model_index.json"
    name = json.loads(index.read_text()).get("_class_name", "") if index.is_file() else model
    name = name.lower()
    return "flux" if "flux" in name else "sd3" if ("stablediffusion3" in name or "stable-diffusion-3" in name) else None


def _options(args) -> dict:
    keys = ("steps", "n_max", "n_min", "n_avg", "src_guidance", "tar_guidance", "method")
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _check_before_loading(args, overrides_per_job: list[tuple[str, dict]]) -> None:
    from .models import DEFAULTS

    kind = model_kind(args.model)
    if kind is None:
        return  # checked per edit once the model is loaded
    for where, overrides in overrides_per_job:
        try:
            replace(DEFAULTS[kind], **{**_options(args), **overrides}).check()
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}{err}") from None


def _loader(args):
    def load():
        import torch

        from .batch import process_shard
        from .models import load as load_model

        dtype = getattr(torch, args.dtype) if args.dtype else None
        device = args.device
        if (device is None and torch.cuda.is_available()) or device == "cuda":
            device = f"cuda:{process_shard()[2]}"  # one GPU per process under accelerate launch
        return load_model(args.model, device=device, dtype=dtype, offload=args.offload)

    return load


def _edit(args) -> int:
    from .batch import _save_png

    image = Path(args.image)
    if not image.is_file():
        raise ValueError(f"image not found: {image}")
    _check_before_loading(args, [("", {})])
    editor = _loader(args)()
    seed = editor.defaults.seed if args.seed is None else args.seed
    settings = editor.settings(**_options(args), seed=seed)
    from tqdm import tqdm

    with tqdm(total=settings.integration_steps, desc=settings.method, unit="step", leave=False) as bar:
        result = editor.edit_latents(image, args.source, args.target, settings, progress=bar)
    _save_png(editor.decode(result.edited, result.context)[0], Path(args.out))
    print(
        f"wrote {args.out} ({settings.method}, {settings.steps} steps, n_max {settings.n_max}, seed {seed}, "
        f"{result.model_calls} model calls, {result.seconds:.1f} s, latent transport cost {result.transport_cost:.4f})"
    )
    return 0


def _run(args) -> int:
    from .batch import load_jobs, process_shard, run_jobs

    jobs = load_jobs(args.edits, args.out_dir)
    _check_before_loading(args, [(f"{job.where}: ", job.overrides) for job in jobs])
    run_seed = 0 if args.seed is None else args.seed
    rank, world, _ = process_shard()
    if world > 1:
        _join_process_group()
    done, skipped, failed = run_jobs(jobs, _loader(args), args.out_dir, run_seed, _options(args))
    who = f"process {rank + 1}/{world}: " if world > 1 else ""
    print(f"{who}{done} edited, {skipped} already done, {failed} failed; see {Path(args.out_dir) / 'results.jsonl'}")
    if world > 1:
        failed = _failures_of_all_processes(failed)
    return 1 if failed else 0


def _join_process_group() -> None:
    """A CPU (gloo) group used only to wait for every process at the end: a launcher stops all
    processes as soon as one exits non-zero, which must not cut the others' edits short."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(days=30))


def _failures_of_all_processes(failed: int) -> int:
    import torch
    import torch.distributed as dist

    total = torch.tensor([failed])
    dist.all_reduce(total)  # also a barrier: returns once every process has finished its edits
    dist.destroy_process_group()
    return int(total.item())


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="hub id, local directory, or tiny-sd3 / tiny-flux (offline demo)")
    p.add_argument("--steps", type=int, help="sampling steps T (default: 50 for SD3, 28 for FLUX)")
    p.add_argument("--n-max", dest="n_max", type=int, help="steps that edit (default: 33 for SD3, 24 for FLUX)")
    p.add_argument("--n-min", dest="n_min", type=int, help="final plain target-sampling steps (default: 0)")
    p.add_argument("--n-avg", dest="n_avg", type=int, help="noise draws averaged per step (default: 1)")
    p.add_argument(
        "--src-guidance",
        dest="src_guidance",
        type=float,
        help="source guidance (default: 3.5 / 1.5; for SD3 a scale <= 1 means no classifier-free guidance)",
    )
    p.add_argument("--tar-guidance", dest="tar_guidance", type=float, help="target guidance (default: 13.5 / 5.5)")
    p.add_argument("--method", choices=["flowedit", "inversion", "sdedit"], help="edit method (default: flowedit)")
    p.add_argument("--seed", type=int, help="noise seed (edit: default 42 / 10 as the reference; run: the run seed)")
    p.add_argument("--dtype", choices=DTYPES, help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--offload", action="store_true", help="model CPU offload (diffusers), for small GPUs")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowedit", description="FlowEdit (inversion-free text-based image editing) with SD3 or FLUX.1."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("edit", help="edit one image")
    p.add_argument("--image", required=True, help="source image")
    p.add_argument("--source", required=True, help="prompt describing the source image")
    p.add_argument("--target", required=True, help="prompt describing the edit")
    p.add_argument("--out", required=True, help="output PNG")
    _settings_options(p)
    p.set_defaults(run=_edit)
    p = sub.add_parser("run", help="edit every entry of a batch file (reference format), resumable")
    p.add_argument("edits", help="YAML batch file: entries with input_img, source_prompt, target_prompts, target_codes")
    p.add_argument("--out-dir", required=True, help="output directory (<image stem>/<code>.png and results.jsonl)")
    _settings_options(p)
    p.set_defaults(run=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # transformers warns at import about optional image processors this tool never uses
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, ImportError, FloatingPointError) as err:
        print(f"flowedit: error: {_first_line(err)}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # e.g. CUDA out of memory
        print(f"flowedit: error: {type(err).__name__}: {_first_line(err)}", file=sys.stderr)
        return 1


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
