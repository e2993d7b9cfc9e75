"""``python -m flowedit.train digits [--out DIR] [--seed N] [--vae-steps N] [--steps N] [--batch N] [--threads N]``:
retrain ``digits-sd3`` from scratch and write it as a diffusers folder with its ``training.json`` record."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from .digits import TrainSettings, save, train

SHIPPED = Path(__file__).parents[1] / "weights" / "digits_sd3"


def main(argv: list[str] | None = None) -> int:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(prog="python -m flowedit.train", description=__doc__)
    parser.add_argument("model", choices=["digits"], help="what to train: digits (the digits-sd3 pipeline)")
    parser.add_argument("--out", default=str(SHIPPED), help=f"output folder (default: the shipped {SHIPPED})")
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
    settings = TrainSettings(seed=args.seed, vae_steps=args.vae_steps, steps=args.steps, batch=args.batch)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        result = train(settings)
        save(result.pipe, args.out)
    finally:
        torch.set_num_threads(threads)

    def mean(losses, part):  # over the first or last 5% of the steps, at least 3
        n = min(len(losses), max(3, len(losses) // 20))
        chosen = losses[:n] if part == "start" else losses[-n:]
        return round(sum(chosen) / len(chosen), 4)

    record = {
        "settings": asdict(settings),
        "averaged_over": "the first (start) or last (end) 5% of the steps, at least 3",
        "vae_mse_start": mean(result.vae_losses, "start"),
        "vae_mse_end": mean(result.vae_losses, "end"),
        "loss_start": mean(result.losses, "start"),
        "loss_end": mean(result.losses, "end"),
        "wall_s": round(result.wall_s, 1),
        "cpu_s": round(result.cpu_s, 1),
    }
    (Path(args.out) / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
