"""The same settings and seed give the same edit as before the families became rows: for every family, a tiny
offline edit's latents (float32, CPU) pinned by their sum, absolute sum and four values, measured on the code
before the redesign; for SD3 and FLUX also a masked edit and an inversion."""

import numpy as np
import pytest
import torch
from PIL import Image

from flowedit.models import FAMILIES, load

# name: (sum, sum of |x|, (x[0], x[n // 3], x[2n // 3], x[-1])) of the edited latents, flattened
PINNED = {
    "sd3": (-686.79232, 1040.65672, (-0.206786, -0.199451, 0.615679, -0.752919)),
    "sd3-mask": (-544.07188, 817.89869, (-0.210138, -0.195887, 0.451104, -0.640599)),
    "sd3-inv": (-702.60699, 1056.42622, (-0.256680, -0.163736, 0.758711, -0.888290)),
    "sd35": (-326.42778, 646.58354, (-0.487774, -0.010764, -0.426823, 0.030461)),
    "flux": (-23.27486, 164.75168, (-0.104981, -0.210746, -0.190893, -0.132894)),
    "flux-mask": (-25.25184, 159.29753, (-0.105018, -0.207200, -0.190919, -0.097806)),
    "flux-inv": (-0.95627, 226.42311, (0.263630, 0.104045, 0.189916, -0.091683)),
    "flux-schnell": (-69.12231, 139.09580, (-0.039943, 0.024167, 0.055628, -0.004206)),
    "flux2": (289.27479, 503.72967, (0.974980, 0.585272, 0.893545, -0.016457)),
    "flux2-klein": (307.98758, 511.28363, (1.048348, 0.609508, 0.903135, 0.066663)),
    "qwen-image": (485.36636, 507.45098, (0.339587, 0.322730, 0.297640, -0.034861)),
    "wan": (141.69515, 170.89423, (0.172916, 0.666197, 0.351803, -0.083855)),
    "wan22": (142.82282, 169.99106, (0.171846, 0.641187, 0.374218, -0.090918)),
}
PINNED_FAMILIES = ["sd3", "sd35", "flux", "flux-schnell", "flux2", "flux2-klein", "qwen-image", "wan", "wan22"]


def picture():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))


def clip():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(5)]


def left_half():
    mask = Image.new("L", (48, 32), 0)
    mask.paste(255, (0, 0, 24, 32))
    return mask


def assert_pinned(key, x):
    total, absolute, values = PINNED[key]
    x = x.double().flatten()
    n = x.numel()
    # float32 rounding of another CPU: a few units in the sixth digit
    assert x.sum().item() == pytest.approx(total, rel=1e-5, abs=1e-3), key
    assert x.abs().sum().item() == pytest.approx(absolute, rel=1e-5, abs=1e-3), key
    torch.testing.assert_close(x[[0, n // 3, 2 * n // 3, n - 1]], torch.tensor(values).double(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("name", PINNED_FAMILIES)
def test_a_tiny_edit_gives_the_pinned_latents(name):
    editor = load(f"tiny-{name}")
    settings = editor.settings(steps=6, n_max=4, n_avg=2, seed=5)
    source = clip() if FAMILIES[name].media == "video" else picture()
    assert_pinned(name, editor.edit_latents(source, "a photo of a cat", "a red dog", settings).edited)
    if name in ("sd3", "flux"):
        local = editor.edit_latents(source, "a photo of a cat", "a red dog", settings, mask=left_half())
        assert_pinned(f"{name}-mask", local.edited)
        inversion = editor.settings(steps=6, n_max=4, method="inversion")
        assert_pinned(f"{name}-inv", editor.edit_latents(source, "a photo of a cat", "a red dog", inversion).edited)


def test_every_family_is_pinned_or_new():
    assert set(PINNED_FAMILIES) <= set(FAMILIES)
