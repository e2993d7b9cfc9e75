"""flowtoy: exact rectified flows of Gaussian mixtures, for seeing why FlowEdit works.

:class:`GaussianMixture` gives closed-form velocities, denoisers and scores along the path
``z_t = (1 - t) x0 + t eps``; :mod:`flowtoy.paper` is the paper's 2-D experiment and
:mod:`flowtoy.metrics` measures edits; :func:`explore` makes every setting a slider. Edits run on :mod:`flowedit`'s shared integrator.
:class:`Settings` declares every setting once (type, bounds, help, default): the command line, the
explorer and :func:`edit` derive from it.
"""

import os

# torch's OpenMP threads spin-wait between parallel regions by default: on a busy 2-core machine (or
# beside another OpenMP runtime, such as scikit-learn's) a small velocity call then took 30x longer.
# Passive waiting costs nothing measurable here; it only takes effect if torch is not imported yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import metrics, paper  # noqa: E402
from ._edit import METHODS, Adaptive, edit, gauss_hermite, round_trip  # noqa: E402
from ._mixture import GaussianMixture  # noqa: E402
from ._settings import Settings  # noqa: E402

__all__ = [
    "METHODS",
    "Adaptive",
    "Explorer",
    "GaussianMixture",
    "Settings",
    "edit",
    "explore",
    "gauss_hermite",
    "metrics",
    "paper",
    "round_trip",
]


def __getattr__(name: str):
    # the explorer pulls in matplotlib (and ipywidgets when called): loaded on first use, not on import
    if name in ("explore", "Explorer"):
        from . import _explore

        return getattr(_explore, name)
    raise AttributeError(f"module 'flowtoy' has no attribute {name!r}")
