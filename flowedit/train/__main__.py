"""``python -m flowedit.train digits [--out DIR] [--seed N] [--vae-steps N] [--steps N] [--batch N] [--threads N]``:
retrain ``digits-sd3`` from scratch and write it as a diffusers folder with its ``training.json`` record.

Every option is checked before any work (one line, exit 2). The new folder is written beside ``--out`` and moved into
place only when it is whole, so an interrupted or failed run (Ctrl-C: exit 130) leaves the old folder as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from ..models._digits import WEIGHTS
from .digits import TrainSettings, save, train

LIMITS = {"vae_steps": 100_000, "steps": 100_000, "batch": 4096, "threads": 256}  # far above any useful run


def _check(args: argparse.Namespace) -> None:
    """One line naming the option unless every count is a whole number in its range."""
    for name, high in LIMITS.items():
        value = getattr(args, name)
        if not 1 <= value <= high:
            raise ValueError(f"--{name.replace('_', '-')} must lie in [1, {high}], got {value}")
    if not 0 <= args.seed <= 2**63 - 1:
        raise ValueError(f"--seed must lie in [0, {2**63 - 1}], got {args.seed}")
    out = Path(args.out)
    if os.path.lexists(out) and (out.is_symlink() or not out.is_dir()):
        raise ValueError(f"--out {out} exists and is not a folder; choose another path")


def _mean(losses: list[float], part: str) -> float:
    """The mean over the first (``start``) or last (``end``) 5% of the steps, at least 3."""
    n = min(len(losses), max(3, len(losses) // 20))
    chosen = losses[:n] if part == "start" else losses[-n:]
    return round(sum(chosen) / len(chosen), 4)


def _write(result, settings: TrainSettings, out: Path) -> dict:
    """The pipeline and its record into a fresh folder beside ``out``, then moved into place (the old one removed
    only after the new one is whole)."""
    record = {
        "settings": asdict(settings),
        "averaged_over": "the first (start) or last (end) 5% of the steps, at least 3",
        "vae_mse_start": _mean(result.vae_losses, "start"),
        "vae_mse_end": _mean(result.vae_losses, "end"),
        "loss_start": _mean(result.losses, "start"),
        "loss_end": _mean(result.losses, "end"),
        "wall_s": round(result.wall_s, 1),
        "cpu_s": round(result.cpu_s, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh, old = out.parent / f".{out.name}.new-{os.getpid()}", out.parent / f".{out.name}.old-{os.getpid()}"
    try:
        save(result.pipe, fresh)
        (fresh / "training.json").write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():
            os.replace(out, old)
        os.replace(fresh, out)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return record


def main(argv: list[str] | None = None) -> int:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(prog="python -m flowedit.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=["digits"], help="what to train: digits (the digits-sd3 pipeline)")
    parser.add_argument("--out", default=str(WEIGHTS), help=f"output folder (default: the shipped {WEIGHTS})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--vae-steps", type=int, default=defaults.vae_steps)
    parser.add_argument("--steps", type=int, default=defaults.steps, help="transformer steps")
    parser.add_argument("--batch", type=int, default=defaults.batch, help="images per step")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the same bits run after run, and no stalls when the cores are shared)",
    )
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    try:
        _check(args)
        settings = TrainSettings(seed=args.seed, vae_steps=args.vae_steps, steps=args.steps, batch=args.batch)
        torch.set_num_threads(args.threads)
        record = _write(train(settings), settings, Path(args.out))
    except KeyboardInterrupt:
        print("flowedit.train: interrupted; the output folder is as it was", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        print(f"flowedit.train: error: {err}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
