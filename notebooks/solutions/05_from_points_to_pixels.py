"""Reference solutions of notebook 05's exercises (one section per exercise; the test suite runs each)."""
# ruff: noqa: F821 -- run inside the notebook, whose names they use


# %% exercise: my_flowedit
def my_flowedit(x_src, velocity_pair, ts, n_max, n_avg, generator):
    """Algorithm S1 with n_min = 0: x_src edited by the last n_max steps of the grid ts; same shape and dtype."""
    times = ts.tolist()  # Python floats t_0 = 1 > ... > t_T = 0
    T = len(times) - 1
    z = x_src.clone()  # z_FE
    for i in range(T - n_max, T):
        t, t_next = times[i], times[i + 1]
        eps = torch.stack([torch.randn_like(x_src, generator=generator) for _ in range(n_avg)])  # (n_avg, *x.shape)
        z_src = (1 - t) * x_src + t * eps
        z_tar = z_src + (z - x_src)  # z_FE + z_src - x_src, in flowedit's order of additions
        v_src, v_tar = velocity_pair(z_src, z_tar, t)
        z = z + (t_next - t) * (v_tar - v_src).mean(dim=0)
    return z


# %% exercise: rows_per_call
# Per draw and image: the source and target branches, each with its unconditional and conditional half.
rows_per_call = 2 * 2 * 3 * 2  # branches x CFG halves x n_avg draws x images


# %% wrong: my_flowedit
def my_flowedit(x_src, velocity_pair, ts, n_max, n_avg, generator):
    times, z = ts.tolist(), x_src.clone()
    for i in range(len(times) - 1 - n_max, len(times) - 1):
        t, t_next = times[i], times[i + 1]
        # the tempting draw: the same numbers as randn_like, but laid out in C order, not the latents' channels-last
        eps = torch.stack([torch.randn(x_src.shape, generator=generator, dtype=x_src.dtype) for _ in range(n_avg)])
        z_src = (1 - t) * x_src + t * eps
        v_src, v_tar = velocity_pair(z_src, z_src + (z - x_src), t)
        z = z + (t_next - t) * (v_tar - v_src).mean(dim=0)
    return z


# %% wrong: rows_per_call
rows_per_call = 4  # the four CFG rows of one draw of one image: the draws and the images are missing
