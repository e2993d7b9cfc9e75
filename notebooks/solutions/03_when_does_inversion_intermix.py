"""Reference solutions of notebook 03's exercises (one section per exercise; the test suite runs each)."""
# ruff: noqa: F821 -- run inside the notebook, whose names they use

# %% exercise: min_crossing_prediction
# A share w = 0.7 of the points starts nearest the lower-left mode, but a target-distributed output has only 1/2
# of its points there, so at least w - 1/2 = 0.2 of them must cross. (On these 1000 points the exact inversion
# crosses 0.194: 70.6% lie nearest the lower-left source mode, 51.2% of its outputs land there.)
min_crossing_prediction = 0.7 - 0.5


# %% exercise: flux_start
def flux_start(size: int, steps: int, n_max: int) -> float:
    """FlowEdit's starting noise level t_start on FLUX.1's grid for a size x size image, T = steps."""
    tokens = (size // 16) ** 2  # 8x VAE downscaling, then 2x2 patches: (size / 16)^2 image tokens
    mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)  # linear in L (diffusers' defaults)
    t = n_max / steps  # the start on the uniform grid, ts[T - n_max]
    return math.exp(mu) * t / (math.exp(mu) * t + 1 - t)  # the shift by e^mu
    # 512²: L = 1024, mu = 0.63, t_start = 0.918 (0.950 at 1024²): the same n_max starts lower at 512².


# %% wrong: min_crossing_prediction
min_crossing_prediction = 0.7  # every point of the heavier mode: more than has to move


# %% wrong: flux_start
def flux_start(size: int, steps: int, n_max: int) -> float:
    return n_max / steps  # the uniform grid's start, without FLUX's shift
