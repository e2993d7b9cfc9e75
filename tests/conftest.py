"""Shared test configuration: hypothesis profiles and float64 by default.

Profiles: ``dev`` (default; quick, random) and ``ci`` (derandomised, more examples), chosen with
the ``HYPOTHESIS_PROFILE`` environment variable (``scripts/test`` picks ``ci`` when ``CI=true``).
"""

import os

import torch
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

torch.set_num_threads(min(2, torch.get_num_threads()))
