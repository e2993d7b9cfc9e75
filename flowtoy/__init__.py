"""flowtoy: exact rectified flows of Gaussian mixtures, for seeing why FlowEdit works.

:class:`GaussianMixture` gives closed-form velocities, denoisers and scores along the path
``z_t = (1 - t) x0 + t eps``; :mod:`flowtoy.paper` is the paper's 2-D experiment and
:mod:`flowtoy.metrics` measures edits. Edits run on :mod:`flowedit`'s shared integrator.
"""

from . import metrics, paper
from ._edit import METHODS, Adaptive, edit, gauss_hermite
from ._mixture import GaussianMixture

__all__ = ["METHODS", "Adaptive", "GaussianMixture", "edit", "gauss_hermite", "metrics", "paper"]
