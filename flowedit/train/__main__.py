"""``python -m flowedit.train digits [--out DIR] [--seed N] [--vae-steps N] [--steps N]``: retrain ``digits-sd3``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

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
    args = parser.parse_args(argv)
    settings = TrainSettings(seed=args.seed, vae_steps=args.vae_steps, steps=args.steps)
    result = train(settings)
    save(result.pipe, args.out)

    def mean(losses, part):
        n = max(1, len(losses) // 20)  # the first or last 5% of the steps
        chosen = losses[:n] if part == "first" else losses[-n:]
        return round(sum(chosen) / len(chosen), 4)

    record = {
        "settings": asdict(settings),
        "vae_mse_first_5pct": mean(result.vae_losses, "first"),
        "vae_mse_last_5pct": mean(result.vae_losses, "last"),
        "loss_first_5pct": mean(result.losses, "first"),
        "loss_last_5pct": mean(result.losses, "last"),
        "wall_s": round(result.wall_s, 1),
        "cpu_s": round(result.cpu_s, 1),
    }
    (Path(args.out) / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
