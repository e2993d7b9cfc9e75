"""HunyuanVideo 1.5, added through the family contract alone (a row, its code, a tiny builder, a reference loop):
one transformer call per step for both branches, both CFG rows and all draws, equal to the loop written from its
pipeline's own ``__call__``, frames kept."""

import numpy as np
import pytest
import torch
from PIL import Image
from reference_loops import REFERENCES

from flowedit.models import load

pytestmark = pytest.mark.filterwarnings("ignore:video")  # a list of frames states no frame rate: not the point here


def frames(count=9, width=40, height=32):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(count)]


@pytest.fixture(scope="module")
def editor():
    return load("tiny-hunyuan-video15")


def test_an_edit_makes_one_call_per_step_and_equals_the_reference_loop(editor):
    calls = []
    hook = editor.pipe.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        settings = editor.settings(steps=6, n_max=3, n_avg=2, seed=3)
        ours = editor.edit_latents(frames(), "a cat", "a photo of a dog", settings)
    finally:
        hook.remove()
    assert ours.model_calls == len(calls) == 3  # both branches, CFG rows and draws: 1 call per step
    assert ours.source.shape == (1, 4, 3, 8, 10)  # (B, C, (9 - 1) / 4 + 1, 32 / 4, 40 / 4)
    clip = editor.load_video(frames())
    pixels = editor.pipe.video_processor.preprocess_video(clip.frames, height=32, width=40)
    guidance = (settings.src_guidance, settings.tar_guidance)
    ref = REFERENCES["hunyuan-video15"](editor.pipe, pixels, "a cat", "a photo of a dog", 6, 3, 2, *guidance, 3)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)
    decoded = editor.decode(ours.edited, ours.layout)
    assert len(decoded) == 9 and {f.size for f in decoded} == {(40, 32)}


def test_guidance_off_and_sdedit_run_with_one_call_per_step(editor):
    for options in (dict(src_guidance=1.0, tar_guidance=1.0, n_min=1), dict(method="sdedit")):
        settings = editor.settings(steps=4, n_max=3, **options)
        result = editor.edit_latents(frames(5, 16, 16), "a cat", "a dog", settings)
        assert result.model_calls == 3 and torch.isfinite(result.edited).all()
