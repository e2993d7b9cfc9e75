"""digits-sd3's quality, measured on held-out digits: the figures the README states.

Every image is judged by :func:`flowtoy.digits.classify` (logistic regression on the train split) after
box-averaging it back to 8x8 (:func:`flowedit.train.digits.to_digits`); held-out images are never trained on.

- ``samples``: text-to-image through the pipeline's own ``__call__`` (``--t2i-steps`` steps, each guidance of
  ``--guidance``), ``--per-class`` samples of each "a handwritten d": the share classified as d, per class.
- ``memory``: 20 samples per class at guidance 4: the median distance to the nearest train image, next to the
  held-out images' (does it copy its training set?).
- ``vae``: every held-out digit through the VAE (posterior mode, decode) vs the same digit only through the
  32x32 -> 8x8 round trip: the classifier's accuracy on each.
- ``edit``: FlowEdit with the family's defaults (``flowedit.load("digits-sd3").settings()``) of every held-out 3
  into an 8: mean P(8).
- ``curves``: P(target) and cost against ``n_max`` and target guidance, FlowEdit and editing by inversion, on
  ``--n`` held-out 3s -> 8.
- ``pairs``: all 90 ordered class pairs, ``--n`` held-out images each, at the defaults: mean P(target), cost
  ``E|y - x|^2`` (64-D, against the source's own round trip) and style kept, next to the exact 64-D rung's
  FlowEdit (:func:`flowtoy.digits.compare`, its own defaults: T = 50, n_max = 40) on the same images.
- ``picture``: held-out digits and their edits at the defaults and at target guidance 7, ``--out`` PNG (the README's
  figure).

Run:  .venv/bin/python benchmarks/bench_digits_sd3.py samples vae edit [curves] [pairs] [--json FILE]
      .venv/bin/python benchmarks/bench_digits_sd3.py picture --out docs/digits_sd3_edits.png
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from tqdm import tqdm

import flowedit
from flowedit.models._digits import T5_TOKENS
from flowedit.train.digits import PROMPT, render, to_digits
from flowtoy import digits

PICTURE_PAIRS = ((3, 8), (1, 7), (0, 6), (4, 9), (5, 6), (7, 2))


def held_out(label: int, n: int | None = None):
    """``(x (N, 64) in [-1, 1], uint8 images (N, 32, 32, 3))`` of held-out digits of ``label``."""
    x = digits.load("test", label)[0][:n]
    return x, render(x.numpy())


def edit_all(editor, images, source: int, target: int, **options) -> torch.Tensor:
    """Edit each uint8 image (32, 32, 3) from "a handwritten source" to "... target"; (N, 64) digits."""
    settings = editor.settings(**options)
    out = [
        np.asarray(editor.render(image, PROMPT.format(source), PROMPT.format(target), settings)[0]) for image in images
    ]
    return to_digits(np.stack(out))


def samples(editor, per_class: int, steps: int, guidances: list[float]) -> dict:
    pipe, result = editor.pipe, {}
    pipe.set_progress_bar_config(disable=True)
    for g in guidances:
        accuracy = []
        for d in tqdm(range(10), desc=f"samples, guidance {g:g}", unit="class"):
            images = pipe(
                PROMPT.format(d),
                height=32,
                width=32,
                num_inference_steps=steps,
                guidance_scale=g,
                num_images_per_prompt=per_class,
                max_sequence_length=T5_TOKENS,
                generator=torch.Generator().manual_seed(d),
                output_type="np",
            ).images  # (N, 32, 32, 3) in [0, 1]
            labels = digits.classify(to_digits(np.rint(images * 255).astype(np.uint8))).argmax(1)
            accuracy.append((labels == d).double().mean().item())
        result[f"{g:g}"] = {"per_class": [round(a, 3) for a in accuracy], "mean": round(float(np.mean(accuracy)), 4)}
        print(f"samples at guidance {g:g}, {steps} steps: mean {np.mean(accuracy):.3f}, per class", result[f"{g:g}"])
    return result


def memory(editor, per_class: int, steps: int, guidance: float) -> dict:
    """Does it copy its training images? Each sample's distance to its nearest train image (64-D, after the
    round trip) next to each held-out image's: copies would sit far closer than new images of the same digits."""
    pipe = editor.pipe
    pipe.set_progress_bar_config(disable=True)
    train = to_digits(render(digits.load("train")[0].numpy()))
    made = []
    for d in range(10):
        images = pipe(
            [PROMPT.format(d)] * per_class,
            height=32,
            width=32,
            num_inference_steps=steps,
            guidance_scale=guidance,
            max_sequence_length=T5_TOKENS,
            generator=torch.Generator().manual_seed(100 + d),
            output_type="np",
        ).images
        made.append(to_digits(np.rint(images * 255).astype(np.uint8)))
    held = to_digits(render(digits.load("test")[0].numpy()))
    result = {
        name: round(torch.cdist(x, train).min(1).values.median().item(), 4)
        for name, x in (("samples", torch.cat(made)), ("held-out images", held))
    }
    print(f"median distance to the nearest train image (64-D), guidance {guidance:g}:", result)
    return result


@torch.no_grad()
def vae(editor) -> dict:
    x, labels = digits.load("test")
    images = render(x.numpy())
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1.0
    v = editor.pipe.vae
    decoded = v.decode(v.encode(pixels.to(v.dtype)).latent_dist.mode()).sample.float().clamp(-1, 1)
    recon = np.rint((decoded.permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)
    acc = {
        "originals (8x8)": digits.classify(x).argmax(1),
        "round trip (32x32 -> 8x8)": digits.classify(to_digits(images)).argmax(1),
        "VAE reconstruction": digits.classify(to_digits(recon)).argmax(1),
    }
    result = {k: round((v == labels).double().mean().item(), 4) for k, v in acc.items()}
    print(f"held-out accuracy ({len(labels)} images):", result)
    return result


def edit(editor) -> dict:
    x, images = held_out(3)
    start = time.perf_counter()
    y = edit_all(editor, images, 3, 8)
    p = digits.classify(y)
    result = {
        "settings": str(editor.settings()),
        "images": len(x),
        "mean P(8)": round(p[:, 8].mean().item(), 4),
        "classified 8": round((p.argmax(1) == 8).double().mean().item(), 4),
        "seconds per edit": round((time.perf_counter() - start) / len(x), 3),
    }
    print("FlowEdit 3 -> 8 at the defaults:", result)
    return result


def measure(x_round_trip, y, source: int, target: int) -> dict:
    row = digits.measure("", x_round_trip, y, source, target)
    return {"P(target)": round(row.target_probability, 4), "cost": round(row.cost, 3), "style": round(row.style, 4)}


def curves(editor, n: int, plot_to: str | None = None) -> dict:
    x, images = held_out(3, n)
    xr = to_digits(images)
    d = editor.settings()
    result = {"n_max": {}, "tar_guidance": {}}
    for k in tqdm((5, 10, 15, 20, 25, 33, 40, 50), desc="n_max", unit="value"):
        result["n_max"][k] = {
            m: measure(xr, edit_all(editor, images, 3, 8, n_max=k, method=m), 3, 8) for m in ("flowedit", "inversion")
        }
    for g in tqdm((1.0, 3.5, 7.0, 13.5, 20.0), desc="target guidance", unit="value"):
        result["tar_guidance"][g] = {
            m: measure(xr, edit_all(editor, images, 3, 8, tar_guidance=g, method=m), 3, 8)
            for m in ("flowedit", "inversion")
        }
    if plot_to:
        draw_curves(result, n, d, plot_to)
    print(f"3 -> 8 on {n} held-out 3s (defaults {d}):")
    for axis, rows in result.items():
        for value, by_method in rows.items():
            print(f"  {axis} {value}: " + "; ".join(f"{m} {r}" for m, r in by_method.items()))
    return result


def draw_curves(result: dict, n: int, d, out: str) -> None:
    """P(target) against cost, one line per method and swept setting, each point labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (axis, label) in zip(axes, (("n_max", "n_max"), ("tar_guidance", "target guidance")), strict=True):
        for method, mark in (("flowedit", "o-"), ("inversion", "s--")):
            values = list(result[axis])
            cost = [result[axis][v][method]["cost"] for v in values]
            prob = [result[axis][v][method]["P(target)"] for v in values]
            ax.plot(cost, prob, mark, label=method)
            for v, c, p in zip(values, cost, prob, strict=True):
                ax.annotate(f"{v:g}", (c, p), fontsize=7, textcoords="offset points", xytext=(3, -9))
        ax.set_xlabel("cost E|y - x|^2 (8x8, summed over pixels)")
        ax.set_ylabel("P(8) (logistic regression)")
        ax.set_title(f"over {label} (others at the defaults)", fontsize=9)
        ax.legend()
    fig.suptitle(
        f"digits-sd3, {n} held-out 3s -> 8: FlowEdit vs editing by inversion (Euler), T = {d.steps}, "
        f"defaults n_max {d.n_max}, guidance {d.src_guidance:g} / {d.tar_guidance:g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("wrote", out)


def pairs(editor, n: int, guidances: list[float] | None = None) -> dict:
    """All 90 pairs at the defaults, and at each target guidance of ``guidances``; the exact rung beside them."""
    settings = {"digits-sd3 flowedit (defaults)": {}}
    settings |= {f"digits-sd3 flowedit, tar_guidance {g:g}": {"tar_guidance": g} for g in guidances or []}
    rows = {name: [] for name in [*settings, "exact 64-D flowedit"]}
    for s in tqdm(range(10), desc="source digits", unit="digit"):
        x, images = held_out(s, n)
        xr = to_digits(images)
        for t in range(10):
            if s != t:
                for name, options in settings.items():
                    rows[name].append(measure(xr, edit_all(editor, images, s, t, **options), s, t))
                row = digits.compare(s, t, n=n, methods=("flowedit",), reference=False)[1][0]
                rows["exact 64-D flowedit"].append(
                    {"P(target)": row.target_probability, "cost": row.cost, "style": row.style}
                )
    mean = {
        name: {k: round(float(np.mean([r[k] for r in found])), 4) for k in ("P(target)", "cost", "style")}
        for name, found in rows.items()
    }
    print(f"90 class pairs, {n} held-out images each:")
    for name, figures in mean.items():
        print(f"  {name}: {figures}")
    return mean


def picture(editor, out: str, gentle: float = 7.0) -> None:
    """Held-out digits (top), their edits at the defaults (middle) and at target guidance ``gentle`` (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = editor.settings()
    rows = (("defaults", {}), (f"tar_guidance {gentle:g}", {"tar_guidance": gentle}))
    fig, axes = plt.subplots(3, len(PICTURE_PAIRS), figsize=(1.7 * len(PICTURE_PAIRS), 6.2))
    for j, (s, t) in enumerate(PICTURE_PAIRS):
        x, images = held_out(s, 1)
        shown = [(images[0], f"held-out {s}")]
        for name, options in rows:
            edited = editor.render(images[0], PROMPT.format(s), PROMPT.format(t), editor.settings(**options))[0]
            p = digits.classify(to_digits(np.asarray(edited)[None]))[0, t].item()
            shown.append((edited, f"-> {t}, {name}\nP({t}) {p:.2f}"))
        for i, (image, title) in enumerate(shown):
            axes[i, j].imshow(np.asarray(image), interpolation="nearest")
            axes[i, j].set_title(title, fontsize=8)
            axes[i, j].axis("off")
    fig.suptitle(
        f"digits-sd3 (SD3 trained on 8x8 digits, at 32x32): FlowEdit, T = {d.steps}, n_max = {d.n_max}, guidance "
        f"{d.src_guidance:g} / {d.tar_guidance:g} (defaults) or / {gentle:g}; P: logistic regression on 8x8",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print("wrote", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=["samples", "memory", "vae", "edit", "curves", "pairs", "picture"])
    parser.add_argument("--per-class", type=int, default=100, help="text-to-image samples per class")
    parser.add_argument("--t2i-steps", type=int, default=28, help="text-to-image steps")
    parser.add_argument("--guidance", type=float, nargs="+", default=[2.0, 4.0, 7.0], help="text-to-image guidance")
    parser.add_argument("--n", type=int, default=10, help="held-out images per class pair (curves, pairs)")
    parser.add_argument("--out", default="docs/digits_sd3_edits.png", help="picture: output PNG")
    parser.add_argument("--pair-guidance", type=float, nargs="*", default=[], help="pairs: also these tar_guidance")
    parser.add_argument("--plot", help="curves: also draw them into this PNG")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the same bits run after run; one core leaves the other to whatever else runs
    editor = flowedit.load("digits-sd3")
    run = {
        "samples": lambda: samples(editor, args.per_class, args.t2i_steps, args.guidance),
        "vae": lambda: vae(editor),
        "memory": lambda: memory(editor, 20, args.t2i_steps, 4.0),
        "edit": lambda: edit(editor),
        "curves": lambda: curves(editor, args.n, args.plot),
        "pairs": lambda: pairs(editor, args.n, args.pair_guidance),
        "picture": lambda: picture(editor, args.out),
    }
    figures = {}
    for part in args.parts:
        start = time.perf_counter()
        figures[part] = run[part]()
        print(f"[{part}: {time.perf_counter() - start:.1f} s]")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2, default=str)


if __name__ == "__main__":
    main()
