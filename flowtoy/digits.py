"""Real 8x8 handwritten digits with exact flow velocities: the rung between 2-D points and SD3 latents.

scikit-learn ships 1,797 real 8x8 digits (grey levels 0..16, about 180 per class). Here each class
gets a :class:`~flowtoy.GaussianMixture` in 64-D fitted by scikit-learn's EM, so its rectified-flow
velocity is exact, and "a 3" -> "an 8" is a text-free analogue of a prompt edit: every method of
:func:`flowtoy.edit` runs on real images with exact velocities, in seconds on a CPU.

Conventions:

- **Pixel scale**: ``x = level / 8 - 1``, so pixels lie in ``[-1, 1]`` (-1 black, +1 white ink) and
  the data's spread (pixel std about 0.6) is comparable with the unit noise, as for SD3 latents.
- **Split**: a fixed permutation (seed 0) holds out 30% of the images (:data:`TEST_FRACTION`).
  The class models and the classifier are fitted on the other 70%; figures and checks edit held-out
  images only.
- **Models**: full covariances, ``reg_covar`` added to each diagonal (border pixels are always
  blank: without it the covariances are singular). Components and regularisation were chosen by
  4-fold held-out log-likelihood on the train split (mean nats per image, all classes)::

        components \\ reg_covar   1e-4     3e-4     1e-3     3e-3
        1                        10.28    17.86    19.48    18.15
        2                      -328.4   -143.2    -48.74    -7.25
        4, 6, 8 (reg 1e-2..0.1): all below 4

  With about 125 training images per class, one full 64-D covariance (2,080 parameters) already
  uses most of the data: one component with ``reg_covar = 1e-3`` generalises best, and is the
  default (:data:`COMPONENTS`, :data:`REG`). :func:`model` fits any other choice.
- **"Looks like the target"**: :func:`classify`, a multinomial logistic regression on the train
  split, independent of the generative models (held-out accuracy 96.3%): the analogue of the
  CLIP score in the paper.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import check_choice
from ._mixture import GaussianMixture
from ._settings import check_setting

__all__ = [
    "COMPONENTS",
    "N_MAX",
    "REG",
    "STEPS",
    "TEST_FRACTION",
    "check_label",
    "classify",
    "gaussian_ot_map",
    "load",
    "model",
    "style_kept",
    "target_probability",
]

TEST_FRACTION = 0.3
STEPS, N_MAX = 50, 40  # the digits experiment edits 40 of 50 steps (a partial edit: the trade-off's middle)
COMPONENTS = 1
REG = 1e-3
SIDE = 8  # images are SIDE x SIDE


def _sklearn():
    """scikit-learn's numerical work runs on one thread: these problems are tiny, and its thread pools
    (OpenBLAS, OpenMP) otherwise keep spinning after each call and starve torch's threads (on a
    2-core machine a 64-D velocity then took 40 ms instead of 0.3 ms)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as err:  # pragma: no cover - a dependency of scikit-learn
        raise ImportError("flowtoy.digits needs scikit-learn: pip install scikit-learn") from err
    return threadpool_limits(limits=1)


@functools.lru_cache(maxsize=1)
def _all() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with _sklearn():
        from sklearn.datasets import load_digits

        levels, labels = load_digits(return_X_y=True)
    test = np.zeros(len(labels), dtype=bool)
    test[np.random.default_rng(0).permutation(len(labels))[: int(TEST_FRACTION * len(labels))]] = True
    return levels / 8.0 - 1.0, labels.astype(np.int64), test


def load(split: str = "all", label: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (N, 64) float64 in [-1, 1], labels (N,) int64)`` of ``split`` ("train", "test" or "all").

    ``label`` keeps one class. Rows are images in reading order (``image.reshape(8, 8)``).
    """
    images, labels, test = _all()
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    keep = np.ones(len(labels), dtype=bool) if split == "all" else (test if split == "test" else ~test)
    if label is not None:
        keep = keep & (labels == check_label(label))  # a new array: the cached split stays as it is
    return torch.from_numpy(images[keep].copy()), torch.from_numpy(labels[keep].copy())


def check_label(label: int) -> int:
    if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label <= 9:
        raise ValueError(f"a digit label must be an integer from 0 to 9, got {label!r}")
    return int(label)


@functools.lru_cache(maxsize=64)
def model(label: int, components: int = COMPONENTS, reg: float = REG) -> GaussianMixture:
    """The exact-flow model of one digit class: a ``components``-component mixture in 64-D, full
    covariances with ``reg`` added to their diagonals, fitted by scikit-learn's EM (``random_state=0``,
    2 initialisations) to the class's train images. Cached: a second call returns the same object."""
    from sklearn.mixture import GaussianMixture as EM

    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise ValueError(f"components must be a positive integer, got {components!r}")
    if not reg > 0:
        raise ValueError(f"reg must be positive (the covariances are singular without it), got {reg!r}")
    images, _ = load("train", label)
    with _sklearn():
        fit = EM(components, covariance_type="full", reg_covar=reg, random_state=0, n_init=2).fit(images.numpy())
    return GaussianMixture(fit.means_, 0.5 * (fit.covariances_ + fit.covariances_.transpose(0, 2, 1)), fit.weights_)


@functools.lru_cache(maxsize=1)
def _classifier():
    from sklearn.linear_model import LogisticRegression

    images, labels = load("train")
    with _sklearn():
        return LogisticRegression(max_iter=2000).fit(images.numpy(), labels.numpy())


def classify(x) -> torch.Tensor:
    """Class probabilities ``(N, 10)`` (float64) of images ``x`` (N, 64) by a classifier trained on real
    train digits, independently of the generative models."""
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).reshape(-1, SIDE * SIDE)
    classifier = _classifier()
    with _sklearn():
        return torch.from_numpy(classifier.predict_proba(x.double().numpy()))


def target_probability(x, label: int) -> float:
    """Mean probability that images ``x`` show digit ``label`` (the paper's "CLIP score" analogue)."""
    return classify(x)[:, check_label(label)].mean().item()


def style_kept(x, y, source: GaussianMixture, target: GaussianMixture) -> float:
    """How much of each image's own style survives the edit: mean cosine of ``x - E_src[x]`` and ``y - E_tar[y]``.

    An image differs from its class mean by how it was written (slant, stroke width, position); an
    edit that keeps the writer's hand keeps that difference: 1 means all of it, 0 none (a fresh
    sample of the target class scores about 0). It compares edits that reach the target class (an
    image left as it is scores only ``cos(x - E_src, x - E_tar)``); the transport cost measures how
    far an edit of any strength moved, as the paper's LPIPS does.
    """
    a = torch.as_tensor(x).double() - source.mean()
    b = torch.as_tensor(y).double() - target.mean()
    return torch.nn.functional.cosine_similarity(a, b, dim=-1).mean().item()


@dataclass(frozen=True)
class AffineMap:
    """``T(x) = x A^T + b`` for points ``x`` (N, d); ``cost`` is ``E|T(x) - x|^2`` under the source law."""

    A: torch.Tensor
    b: torch.Tensor
    cost: float

    def __call__(self, x) -> torch.Tensor:
        x = torch.as_tensor(x).double()
        return x @ self.A.T + self.b


def gaussian_ot_map(source: GaussianMixture, target: GaussianMixture) -> AffineMap:
    """The optimal-transport map between two single-Gaussian models (Bures-Wasserstein, by POT).

    For ``N(m_s, S_s) -> N(m_t, S_t)`` it is ``T(x) = m_t + A (x - m_s)`` with
    ``A = S_s^-1/2 (S_s^1/2 S_t S_s^1/2)^1/2 S_s^-1/2``; its cost is the squared 2-Wasserstein distance
    ``|m_s - m_t|^2 + tr(S_s + S_t - 2 (S_s^1/2 S_t S_s^1/2)^1/2)``, the least of any map that
    reaches the target law: a reference for FlowEdit's transport cost.
    """
    if source.n_components != 1 or target.n_components != 1:
        raise ValueError("the Gaussian OT map needs single-component models (components=1)")
    with _sklearn():
        import ot

        return _bures_wasserstein(ot, source, target)


def _bures_wasserstein(ot, source: GaussianMixture, target: GaussianMixture) -> AffineMap:
    ms, mt = source.means[0].numpy(), target.means[0].numpy()
    Ss, St = source.covs[0].numpy(), target.covs[0].numpy()
    A, b = ot.gaussian.bures_wasserstein_mapping(ms, mt, Ss, St)
    cost = float(ot.gaussian.bures_wasserstein_distance(ms, mt, Ss, St)) ** 2
    return AffineMap(torch.from_numpy(np.asarray(A).T.copy()), torch.from_numpy(np.asarray(b).copy()), cost)


# --------------------------------------------------------------------------------------------------
# Edits of real digits by every method, and their measures
METHODS = {  # row name -> flowtoy.edit keyword arguments
    "flowedit": {"method": "flowedit"},
    "flowedit-mean": {"method": "flowedit-mean"},
    "inversion (euler)": {"method": "inversion", "solver": "euler"},
    "inversion (rk4)": {"method": "inversion", "solver": "rk4"},
    "inversion (exact)": {"method": "inversion", "solver": "exact"},
    "sdedit": {"method": "sdedit"},
    "ot": {"method": "ot"},
    # the editors after FlowEdit (official strengths; UniEdit's mask over each image's 64 pixels)
    "flowalign": {"method": "flowalign"},
    "dvrf": {"method": "dvrf"},
    "dds": {"method": "dds"},
    "uniedit": {"method": "uniedit", "pixels": True},
    "inversion (rf-solver)": {"method": "inversion", "solver": "rf-solver"},
    "inversion (fireflow)": {"method": "inversion", "solver": "fireflow"},
    "inversion (uni-inv)": {"method": "inversion", "solver": "uni-inv"},
}


@dataclass(frozen=True)
class Row:
    """One method's edits of the held-out images of a class pair and their measures (means over images)."""

    method: str
    images: torch.Tensor  # (N, 64) edited images
    cost: float  # E|y - x|^2, summed over the 64 pixels
    target_probability: float  # classifier's probability of the target class
    log_likelihood: float  # exact log p_target(y), nats per image
    style: float  # style_kept(x, y)
    seconds: float


def measure(name: str, x, y, source: int, target: int, seconds: float = 0.0) -> Row:
    """Every measure of an edit ``x -> y`` of digit ``source`` into digit ``target``."""
    x, y = torch.as_tensor(x).double(), torch.as_tensor(y).double()
    src, tar = model(source), model(target)
    cost = (y - x).square().sum(-1).mean().item()
    loglik = tar.log_prob(y).mean().item()
    return Row(name, y, cost, target_probability(y, target), loglik, style_kept(x, y, src, tar), seconds)


def compare(
    source: int,
    target: int,
    *,
    steps: int = STEPS,
    n_max: int | None = N_MAX,
    n: int | None = None,
    seed: int = 0,
    methods=tuple(METHODS),
    reference: bool = True,
) -> tuple[torch.Tensor, list[Row]]:
    """Edit the held-out images of digit ``source`` (the first ``n``) into digit ``target`` by each method.

    Every method runs :func:`flowtoy.edit` on the class models (T = ``steps`` on the uniform grid,
    ``n_max`` editing steps for FlowEdit, SDEdit and inversion alike, None for all ``T``; noise from
    ``seed``). The digits experiment's default is 40 of 50 steps (:data:`N_MAX`, :data:`STEPS`). With
    single-component models and ``reference``, a last row ``"gaussian ot"`` applies the exact
    optimal-transport map (:func:`gaussian_ot_map`). Returns the source images and one :class:`Row` per method.
    """
    import time

    from ._edit import edit

    source, target = check_label(source), check_label(target)
    steps, seed = check_setting("steps", steps), check_setting("seed", seed)
    n_max = check_setting("n_max", n_max)
    n = None if n is None else check_setting("n", n)
    methods = [check_choice(m, "method", tuple(METHODS)) for m in methods]
    x = load("test", source)[0][:n]
    src, tar = model(source), model(target)
    rows = []
    for name in methods:
        start = time.perf_counter()
        options = {"steps": steps, "n_max": n_max, "generator": torch.Generator().manual_seed(seed)}
        y = edit(x, src, tar, **METHODS[name], **options)
        rows.append(measure(name, x, y, source, target, time.perf_counter() - start))
    if reference and src.n_components == 1 and tar.n_components == 1:
        start = time.perf_counter()
        y = gaussian_ot_map(src, tar)(x)
        rows.append(measure("gaussian ot", x, y, source, target, time.perf_counter() - start))
    return x, rows


def table(rows: list[Row]) -> str:
    """The measures of :func:`compare` as a text table."""
    lines = [
        f"{'method':<21} {'cost E|y-x|^2':>14} {'P(target)':>10} {'target log p':>13} {'style kept':>11} {'time [s]':>9}"
    ]
    for r in rows:
        cost = f"{r.cost:>14.2f}" if abs(r.cost) < 1e9 else f"{r.cost:>14.3g}"  # a diverged edit stays one column
        loglik = f"{r.log_likelihood:>13.1f}" if abs(r.log_likelihood) < 1e9 else f"{r.log_likelihood:>13.3g}"
        lines.append(f"{r.method:<21} {cost} {r.target_probability:>10.3f} {loglik} {r.style:>11.3f} {r.seconds:>9.3f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Tradeoff:
    """Mean target probability and transport cost over class pairs, per method and ``n_max`` (arrays ``(len(n_max),)``)."""

    steps: int
    n_max: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]
    probability: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    style: dict[str, np.ndarray]


def tradeoff(
    pairs=None,
    n_max=(10, 20, 30, 40, 50),
    *,
    steps: int = STEPS,
    n: int | None = 20,
    seed: int = 0,
    methods=("flowedit", "inversion (euler)", "sdedit"),
    progress: bool = True,
) -> Tradeoff:
    """The structure-vs-edit trade-off (the paper's CLIP-vs-LPIPS curves) as ``n_max`` grows.

    For each ordered class pair (default: all 90) the first ``n`` held-out source images are edited
    by each method at each ``n_max``; the target probability, cost and style kept are averaged over
    images, then over pairs.
    """
    from tqdm.auto import tqdm

    pairs = tuple(
        (check_label(s), check_label(t)) for s, t in (pairs or [(s, t) for s in range(10) for t in range(10) if s != t])
    )
    n_max = tuple(check_setting("n_max", k) for k in n_max)
    if not (pairs and n_max):
        raise ValueError("pairs and n_max must each hold at least one value")
    shape = (len(pairs), len(n_max))
    prob, cost, style = ({m: np.zeros(shape) for m in methods} for _ in range(3))
    for i, (s, t) in enumerate(tqdm(pairs, desc="class pairs", unit="pair", disable=not progress)):
        for j, k in enumerate(n_max):
            _, rows = compare(s, t, steps=steps, n_max=k, n=n, seed=seed, methods=methods, reference=False)
            for r in rows:
                prob[r.method][i, j], cost[r.method][i, j], style[r.method][i, j] = (
                    r.target_probability,
                    r.cost,
                    r.style,
                )
    over_pairs = [{m: v.mean(0) for m, v in values.items()} for values in (prob, cost, style)]
    return Tradeoff(steps, tuple(n_max), pairs, *over_pairs)
