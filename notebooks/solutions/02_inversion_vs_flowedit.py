"""Reference solutions of notebook 02's exercises (one section per exercise; the test suite runs each)."""
# ruff: noqa: F821 -- run inside the notebook, whose names they use

# %% exercise: my_steps
# Scan T = 1, 2, ... with the explorer (or inversion_crossing) until the crossing drops under 5%.
my_steps = next(steps for steps in range(1, 101) if inversion_crossing(steps) < 0.05)


# %% exercise: flowedit_step
def flowedit_step(z: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One step of Algorithm S1: z (N, 2) at t -> (N, 2) at t_next, with noise draws eps (n_avg, N, 2)."""
    z_src = (1 - t) * x + t * eps  # (n_avg, N, 2): the noisy source points
    z_tar = z_src + (z - x)  # the noisy target points: the same noise, shifted by the edit so far
    delta = (target.velocity(z_tar, t) - source.velocity(z_src, t)).mean(dim=0)
    return z + (t_next - t) * delta


# %% wrong: my_steps
my_steps = 10  # where inversion still intermixes


# %% wrong: flowedit_step
def flowedit_step(z: torch.Tensor, x: torch.Tensor, eps: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    z_src = (1 - t) * x + t * eps
    z_tar = (1 - t) * z + t * eps  # a typical slip: noising the current point instead of shifting z_src by z - x
    return z + (t_next - t) * (target.velocity(z_tar, t) - source.velocity(z_src, t)).mean(dim=0)
