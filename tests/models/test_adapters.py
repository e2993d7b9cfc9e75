"""FlowEdit on tiny random-weight SD3 and FLUX pipelines: every branch, the reference algorithm, the schedules."""

import numpy as np
import pytest
import torch
from PIL import Image
from reference_loops import reference_flux, reference_sd3

import flowedit
import flowtoy._edit
from flowedit import flux_timesteps, sd3_timesteps
from flowedit.models import Editor, load
from flowedit.models import _editor as editor_module
from flowedit.models import _methods as methods_module
from flowedit.testing import tiny_flux_pipeline, tiny_sd3_pipeline


@pytest.fixture(scope="module")
def sd3():
    return Editor.from_pipeline(tiny_sd3_pipeline(seed=0))


@pytest.fixture(scope="module")
def flux():
    return Editor.from_pipeline(tiny_flux_pipeline(seed=0))


def picture(width=64, height=48, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


FAST = dict(steps=6, n_max=4)


@pytest.mark.parametrize("model", ["sd3", "flux"])
@pytest.mark.parametrize(
    "options",
    [
        dict(n_min=0, n_avg=1),
        dict(n_min=2, n_avg=1),
        dict(n_min=0, n_avg=3),
        dict(n_min=1, n_avg=2, src_guidance=1.0, tar_guidance=0.5),
        dict(method="inversion"),
        dict(method="sdedit"),
    ],
)
def test_every_branch_edits_a_non_square_image(model, options, request):
    editor = request.getfixturevalue(model)
    settings = editor.settings(**FAST, **options)
    result = editor.edit_latents(picture(), "a photo of a cat", "a photo of a dog", settings)
    assert result.edited.shape == result.source.shape and torch.isfinite(result.edited).all()
    assert result.latent_mse > 0 and result.outcome == {
        "model_calls": result.model_calls,
        "latent_mse": result.latent_mse,
    }
    assert editor.decode(result.edited, result.layout)[0].size == (64, 48)
    expected_calls = {"flowedit": 4, "inversion": 8, "sdedit": 4}[settings.method]
    assert result.model_calls == expected_calls  # all draws and both branches in one call per step
    assert settings.integration_steps == expected_calls  # what the progress bar counts


def test_the_editor_runs_the_very_integrator_flowtoy_uses():
    assert methods_module.flowedit is flowedit.flowedit is flowtoy._edit.flowedit


@pytest.mark.parametrize("n_avg", [1, 2])
def test_sd3_edit_equals_the_reference_algorithm_for_the_same_seed(sd3, n_avg):
    settings = sd3.settings(steps=8, n_max=6, n_avg=n_avg, src_guidance=3.5, tar_guidance=13.5, seed=7)
    ours = sd3.edit_latents(picture(), "a cat", "a dog", settings)
    # the VAE hands over channels_last latents on CPU: randn_like fills them in that memory order
    assert ours.source.is_contiguous(memory_format=torch.channels_last) and not ours.source.is_contiguous()
    pixels = sd3.pipe.image_processor.preprocess(sd3.load_image(picture()))
    ref = reference_sd3(sd3.pipe, pixels, "a cat", "a dog", 8, 6, n_avg, 3.5, 13.5, 7)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)  # float32 rounding of another grouping


@pytest.mark.parametrize("n_min, n_avg", [(0, 1), (2, 2)])
def test_flux_edit_equals_the_reference_algorithm_for_the_same_seed(flux, n_min, n_avg):
    settings = flux.settings(steps=7, n_max=5, n_min=n_min, n_avg=n_avg, src_guidance=1.5, tar_guidance=5.5, seed=10)
    ours = flux.edit_latents(picture(), "a cat", "a dog", settings)
    pixels = flux.pipe.image_processor.preprocess(flux.load_image(picture()))
    ref = reference_flux(flux.pipe, pixels, "a cat", "a dog", 7, 5, n_avg, 1.5, 5.5, 10, n_min=n_min)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


def test_schedules_equal_the_diffusers_schedulers(sd3, flux):
    pipe = sd3.pipe
    pipe.scheduler.set_timesteps(50)
    torch.testing.assert_close(sd3_timesteps(50, shift=3.0), pipe.scheduler.sigmas.double(), rtol=0, atol=1e-6)
    x, _ = flux.adapter.encode_image(flux.pipe.image_processor.preprocess(picture(64, 64)))
    ts = flux.adapter.timesteps(28, x)
    mu = flowedit.flux_mu(x.shape[1])
    torch.testing.assert_close(flux_timesteps(28, mu=mu), ts, rtol=0, atol=1e-6)


def test_same_seed_same_edit_and_bf16_runs(sd3):
    a = sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(**FAST, seed=3))
    b = sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(**FAST, seed=3))
    assert torch.equal(a.edited, b.edited)
    bf16 = Editor.from_pipeline(tiny_sd3_pipeline(seed=0, dtype=torch.bfloat16))
    c = bf16.edit_latents(picture(), "a cat", "a dog", bf16.settings(**FAST, seed=3))
    assert c.edited.dtype == torch.float32 and torch.isfinite(c.edited).all()


def test_non_finite_model_output_names_the_step_and_no_float16_for_a_float32_model(sd3, monkeypatch):
    real = sd3.pipe.transformer.forward

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        return (out[0] * float("nan"),)

    monkeypatch.setattr(sd3.pipe.transformer, "forward", broken)
    with pytest.raises(
        FloatingPointError, match=r"^the model's velocity pair \(source\) returned NaN or inf at step 2"
    ) as info:
        sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(**FAST))
    assert "float16" not in str(info.value) and "runs in float32" in str(info.value)


def test_bad_settings_fail_before_any_model_work(sd3):
    with pytest.raises(ValueError, match="n_max = 60 exceeds the number of steps \\(50\\)"):
        sd3.settings(n_max=60)
    with pytest.raises(ValueError, match="unknown method 'invert'"):
        sd3.settings(method="invert")
    assert sd3.settings() == editor_module.DEFAULTS["sd3"]


def test_flux_keeps_no_image_state_its_latents_layout_travels_with_them(flux):
    wide = flux.edit_latents(picture(64, 48), "a cat", "a dog", flux.settings(**FAST))
    tall = flux.edit_latents(picture(48, 64), "a cat", "a dog", flux.settings(**FAST))
    assert flux.decode(wide.edited, wide.layout)[0].size == (64, 48)
    assert flux.decode(tall.edited, tall.layout)[0].size == (48, 64)
    assert wide.edited.shape == tall.edited.shape  # 12 x 16 and 16 x 12 tokens: only the layout tells them apart
    again = flux.edit_latents(picture(64, 48), "a cat", "a dog", flux.settings(**FAST))
    assert torch.equal(again.edited, wide.edited)  # encoding the tall image in between changed nothing
    with pytest.raises(TypeError, match="pass the PackedLayout"):
        flux.adapter.decode_latents(wide.edited)


def test_a_failed_edit_does_not_taint_the_next_one(sd3, monkeypatch):
    real = sd3.pipe.transformer.forward
    monkeypatch.setattr(sd3.pipe.transformer, "forward", lambda *a, **k: (real(*a, **k)[0] * float("nan"),))
    with pytest.raises(FloatingPointError):
        sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(**FAST))
    monkeypatch.setattr(sd3.pipe.transformer, "forward", real)
    assert torch.isfinite(sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(**FAST)).edited).all()


def test_image_not_a_multiple_of_the_factor_is_center_cropped_with_a_warning(sd3):
    with pytest.warns(UserWarning, match="center-cropped to"):
        image = sd3.load_image(picture(70, 50))
    assert image.size[0] % sd3.adapter.vae_factor == 0 and image.size[1] % sd3.adapter.vae_factor == 0


def test_load_without_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="local directory"):
        load(str(tmp_path / "missing-model"))
    assert load("tiny-flux").adapter.family is flowedit.models.FAMILIES["flux"]


def test_top_level_api_is_lazy_and_the_core_does_not_import_diffusers():
    import subprocess
    import sys

    code = "import sys, flowedit, flowtoy; assert 'diffusers' not in sys.modules and 'transformers' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert flowedit.load is load and flowedit.Editor is Editor
