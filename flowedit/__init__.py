"""flowedit: FlowEdit (Kulikov et al., ICCV 2025) on one shared rectified-flow ODE integrator.

The core (this namespace) depends on torch only and knows nothing of images, prompts or models:
the same :func:`flowedit` call moves 2-D points between Gaussian mixtures and edits the latents of
SD3, FLUX and the other families of :mod:`flowedit.models`.
Time ``t`` is sigma: ``t = 0`` is data, ``t = 1`` is noise, ``z_t = (1 - t) x0 + t eps``.

``flowedit.load`` and ``flowedit.Editor`` (every family through diffusers) are imported from
:mod:`flowedit.models` on first use, so importing the core never imports diffusers.
"""

from ._after import UNIEDIT_EPS, dvrf, flowalign, uniedit, uniedit_mask
from ._edit import (
    VelocityPair,
    check_generator,
    check_mask,
    check_schedule,
    edit_by_inversion,
    flowedit,
    sdedit,
    velocity_pair,
)
from ._grid import (
    check_count,
    check_grid,
    flux_mu,
    flux_timesteps,
    linear_timesteps,
    sd3_timesteps,
    shift_timesteps,
)
from ._integrate import CALLBACK_KEYS, RK4, SOLVERS, Adaptive, Euler, Heun, Solver, Velocity, integrate
from ._solvers import PAPER_SOLVERS, FireFlow, Midpoint, RFSolver, UniInv, make_solver

_MODELS = ("DEFAULTS", "EditResult", "EditSettings", "Editor", "load")


def __getattr__(name: str):
    if name in _MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'flowedit' has no attribute {name!r}")


__all__ = [
    "PAPER_SOLVERS",
    "make_solver",
    "CALLBACK_KEYS",
    "Adaptive",
    "Editor",
    "RK4",
    "SOLVERS",
    "Euler",
    "FireFlow",
    "Heun",
    "Midpoint",
    "RFSolver",
    "Solver",
    "UNIEDIT_EPS",
    "UniInv",
    "Velocity",
    "VelocityPair",
    "check_count",
    "check_generator",
    "check_grid",
    "check_mask",
    "check_schedule",
    "dvrf",
    "edit_by_inversion",
    "flowalign",
    "flowedit",
    "flux_mu",
    "flux_timesteps",
    "integrate",
    "linear_timesteps",
    "load",
    "sd3_timesteps",
    "sdedit",
    "shift_timesteps",
    "uniedit",
    "uniedit_mask",
    "velocity_pair",
]
