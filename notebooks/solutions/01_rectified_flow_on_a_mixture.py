"""Reference solutions of notebook 01's exercises (one section per exercise; the test suite runs each)."""
# ruff: noqa: F821 -- run inside the notebook, whose names they use

# %% exercise: euler_sample
def euler_sample(velocity, z: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Integrate dz/dt = velocity(z, t) from ts[0] to ts[-1], one Euler step per interval of the grid ts."""
    for t, t_next in zip(ts[:-1].tolist(), ts[1:].tolist(), strict=True):
        z = z + (t_next - t) * velocity(z, t)
    return z


# %% exercise: score_error_factor
# An error delta in v is an error (1 - t) delta / t in the score -(z + (1 - t) v) / t: at t = 0.05, 0.95 / 0.05.
score_error_factor = (1 - 0.05) / 0.05


# %% wrong: euler_sample
def euler_sample(velocity, z: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    for t, t_next in zip(ts[:-1].tolist(), ts[1:].tolist(), strict=True):
        z = z + (t_next - t) * velocity(z, t_next)  # a typical slip: the velocity at the end of the step
    return z


# %% wrong: score_error_factor
score_error_factor = 9  # the factor at t = 0.1, not at 0.05
