"""Every edit method on a model: which prompts each encodes, which velocities it asks the adapter for, and the
core function that runs it. One transformer call per step (two per step for the two-stage solvers of inversion).

=============  ==========================================================  =================================
method         what it asks of the adapter                                 transformer calls
=============  ==========================================================  =================================
flowedit       the pair ``[src | c_src (CFG), tar | c_tar (CFG)]``         ``n_max``
flowalign      the pair ``[q | c_src, p | c_src, p | c_tar]``: the target  ``n_max``
               guided with the SOURCE prompt as its negative,
               ``v(p|c_src) + w (v(p|c_tar) - v(p|c_src))``, ``w`` =
               ``tar_guidance`` on every family; the source guided the
               family's way at ``src_guidance`` (official: 1, unguided)
dvrf, dds      the FlowEdit pair, evaluated at DVRF's shifted target       ``n_max``
uniedit        ``v(z | "")`` at guidance 1 to invert (Uni-Inv), then the   ``n_max + 1`` + ``n_max``
               pair ``[z | c_src, z | c_tar]`` at the same ``z``
inversion      ``v(. | c_src)`` up, ``v(. | c_tar)`` down, with ``solver``  ``2 n_max`` (euler), ``4 n_max``
                                                                           (midpoint, rf-solver), ``2 n_max
                                                                           + 2`` (fireflow, uni-inv)
sdedit         ``v(. | c_tar)``                                            ``n_max``
=============  ==========================================================  =================================

FlowAlign's official code is SD3's. On a family whose guidance is embedded (FLUX.1 [dev]) its target is still guided
around the source prompt by ``w`` in two rows (true CFG), and every row takes the embedded scale ``src_guidance``
(the official 1: as unguided as that family gets); on a family with classifier-free guidance the target's rows are
single prompts, unguided, as in the official code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .._after import dvrf, flowalign, uniedit
from .._edit import edit_by_inversion, flowedit, sdedit
from .._solvers import make_solver
from ._adapter import Adapter
from ._settings import MASKED, EditSettings

__all__ = ["MASKED", "run_method"]


def run_method(
    adapter: Adapter,
    s: EditSettings,
    x: torch.Tensor,
    layout: Any,
    prompts: tuple[str, str],
    counted: Callable,
    step: Callable,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Edit the latents ``x`` (the adapter's shape, float32) from ``prompts = (source, target)`` with ``s.method``.

    ``counted(v)`` wraps each velocity so that its calls are counted; ``step`` is the integrator's callback;
    ``mask`` (a latent mask, broadcastable to ``x``) scales each step's update (methods in :data:`MASKED`).
    Returns the edited latents, ``x``'s shape.
    """
    source, target = prompts
    ts = adapter.timesteps(s.steps, x)
    generator = torch.Generator(device=x.device).manual_seed(s.seed)
    edit = {"n_max": s.n_max, "generator": generator, "callback": step, "mask": mask}
    method, strengths = s.method, s.strengths
    if method == "uniedit":  # the official demo: invert with the empty prompt at guidance 1, edit unguided
        invert = counted(adapter.velocity(adapter.encode_prompt("", 1.0), layout))
        pair = counted(_pair(adapter, source, target, s, layout))
        channel_dim = adapter.family.packing.channel_dim  # (B, C, [F,] h, w) latents: 1; packed tokens (B, L, C): 2
        return uniedit(
            x, invert, pair, ts, n_max=s.n_max, omega=strengths["omega"], channel_dim=channel_dim, callback=step
        )
    if method == "inversion":
        v_src = counted(adapter.velocity(adapter.encode_prompt(source, s.src_guidance), layout))
        v_tar = counted(adapter.velocity(adapter.encode_prompt(target, s.tar_guidance), layout))
        solver = make_solver(strengths["solver"])
        return edit_by_inversion(x, v_src, v_tar, ts, n_max=s.n_max, method=solver, callback=step)
    if method == "sdedit":
        v_tar = counted(adapter.velocity(adapter.encode_prompt(target, s.tar_guidance), layout))
        return sdedit(x, v_tar, ts, n_max=s.n_max, generator=generator, method="euler", callback=step)
    if method == "flowalign":
        guided = adapter.encode_around(target, source, s.tar_guidance, s.src_guidance)
        pair = counted(adapter.velocity_pair(adapter.encode_prompt(source, s.src_guidance), guided, layout))
        return flowalign(x, pair, ts, zeta=strengths["zeta"], **edit)
    pair = counted(_pair(adapter, source, target, s, layout))
    if method in ("dvrf", "dds"):
        return dvrf(x, pair, ts, eta=strengths.get("eta", 0.0), **edit)
    return flowedit(x, pair, ts, n_min=s.n_min, n_avg=s.n_avg, **edit)


def _pair(adapter: Adapter, source: str, target: str, s: EditSettings, layout: Any):
    """The plain pair: each prompt guided the family's way with its own scale."""
    src, tar = adapter.encode_prompt(source, s.src_guidance), adapter.encode_prompt(target, s.tar_guidance)
    return adapter.velocity_pair(src, tar, layout)
