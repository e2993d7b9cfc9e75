"""Reference solutions of notebook 06's exercises (one section per exercise; the test suite runs each)."""
# ruff: noqa: F821 -- run inside the notebook, whose names they use


# %% exercise: flowalign_step
def flowalign_step(z, x, q, p, v_src, v_tar, t, t_next, zeta):
    """FlowEdit's step plus zeta times x0hat_src(q) - x0hat_tar(p), with x0hat(y) = y - t v(y)."""
    return z + (t_next - t) * (v_tar - v_src) + zeta * ((q - t * v_src) - (p - t * v_tar))


# %% exercise: scale
scale = 11  # omega (1 + m) Delta from the correction, plus m Delta from the fusion m v_T + (1 - m) v_S = v_S + m Delta
