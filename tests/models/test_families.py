"""Every model family: loadable by name, one transformer call per step, every branch, same seed same bits,
the reference algorithm; and the family read from a loaded pipeline or from a name before loading."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from reference_loops import REFERENCES

from flowedit.cli import main
from flowedit.models import FAMILIES, Editor, load
from flowedit.models._families import family_of_name

FAST = dict(steps=6, n_max=4)


# test_adapters.py runs sd3 and flux through every branch and their reference loops, test_video.py the video
# families; here the other image families
NEW = [name for name, f in FAMILIES.items() if name not in ("sd3", "flux") and f.media == "image"]


@pytest.fixture(scope="module", params=NEW)
def editor(request):
    return load(f"tiny-{request.param}")


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_tiny_pipeline_is_read_back_as_its_family_from_the_pipeline_and_from_its_configs(name, tmp_path):
    editor = load(f"tiny-{name}")
    assert editor.family is FAMILIES[name] and Editor.from_pipeline(editor.pipe).family is FAMILIES[name]
    assert editor.settings() == FAMILIES[name].defaults
    # the same predicate reads a directory's model_index.json and transformer/config.json, as save_pretrained writes
    transformer = editor.pipe.transformer if editor.pipe.transformer is not None else editor.pipe.transformer_2
    (tmp_path / "transformer").mkdir()
    index = {"_class_name": type(editor.pipe).__name__, **editor.pipe.config}  # save_pretrained adds the class
    (tmp_path / "model_index.json").write_text(json.dumps(index, default=str))
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(dict(transformer.config), default=str))
    assert family_of_name(str(tmp_path)) is FAMILIES[name]


def picture(width=64, height=48):
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_the_new_families_tiny_transformers_have_their_architecture(editor):
    name, config = editor.family.name, editor.pipe.transformer.config
    if name == "sd35":  # SD3.5 medium's transformer: QK normalisation and dual attention
        assert config.qk_norm == "rms_norm" and tuple(config.dual_attention_layers) == (0,)
    if name == "flux-schnell":  # no guidance input, no shift
        assert not config.guidance_embeds and editor.pipe.scheduler.config.shift == 1.0


@pytest.mark.parametrize(
    "options", [dict(), dict(n_min=2, n_avg=3, src_guidance=1.0, tar_guidance=1.0), dict(method="sdedit")]
)
def test_every_branch_edits_with_one_call_per_step_and_repeats_bit_for_bit(editor, options):
    calls = []
    hook = editor.pipe.transformer.register_forward_hook(lambda *args: calls.append(1))
    try:
        settings = editor.settings(**FAST, **options)
        a = editor.edit_latents(picture(), "a photo of a cat", "a photo of a dog", settings)
        b = editor.edit_latents(picture(), "a photo of a cat", "a photo of a dog", settings)
    finally:
        hook.remove()
    assert a.model_calls == b.model_calls == len(calls) // 2 == 4  # n_max steps, one call each
    assert torch.equal(a.edited, b.edited) and torch.isfinite(a.edited).all()
    assert editor.decode(a.edited, a.layout)[0].size == (64, 48)


def test_each_family_equals_the_reference_algorithm(editor):
    if editor.family.name == "digits-sd3":  # trained weights: test_digits_sd3.py compares it in float64
        pytest.skip("digits-sd3 is compared with its reference loop in float64 in test_digits_sd3.py")
    settings = editor.settings(steps=7, n_max=5, n_avg=2, seed=3)
    ours = editor.edit_latents(picture(), "a cat", "a photo of a dog", settings)
    pixels = editor.pipe.image_processor.preprocess(editor.load_image(picture()))
    loop = REFERENCES[editor.family.name]  # written from the family's pipeline's own __call__
    guidance = (settings.src_guidance, settings.tar_guidance)
    ref = loop(editor.pipe, pixels, "a cat", "a photo of a dog", 7, 5, 2, *guidance, 3)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


def test_schnell_ignores_guidance_and_uses_the_unshifted_grid():
    editor = load("tiny-flux-schnell")
    a = editor.edit_latents(picture(), "a cat", "a dog", editor.settings(**FAST))
    b = editor.edit_latents(picture(), "a cat", "a dog", editor.settings(**FAST, src_guidance=7.0, tar_guidance=9.0))
    assert torch.equal(a.edited, b.edited)
    x, _ = editor.adapter.encode_image(editor.pipe.image_processor.preprocess(picture()))
    torch.testing.assert_close(editor.adapter.timesteps(4, x), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]).double())


@pytest.mark.parametrize(
    "name, family",
    [
        ("tiny-sd35", "sd35"),
        ("stabilityai/stable-diffusion-3-medium-diffusers", "sd3"),
        ("stabilityai/stable-diffusion-3.5-large", "sd35"),
        ("black-forest-labs/FLUX.1-dev", "flux"),
        ("black-forest-labs/FLUX.1-schnell", "flux-schnell"),
        ("Qwen/Qwen-Image", "qwen-image"),
        ("Qwen/Qwen-Image-Edit", None),
        ("black-forest-labs/FLUX.2-klein-4B", "flux2-klein"),
        ("black-forest-labs/FLUX.2-dev", "flux2"),
        ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "wan"),
        ("Wan-AI/Wan2.2-T2V-A14B-Diffusers", "wan22"),
        ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", "wan"),
        ("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", None),
        ("Tongyi-MAI/Z-Image-Turbo", "z-image"),
        ("lodestones/Chroma1-HD", "chroma"),
        ("hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v", "hunyuan-video15"),
        ("hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_i2v", None),
        ("someone/unknown-model", None),
    ],
)
def test_the_family_a_name_announces(name, family):
    found = family_of_name(name)
    assert (found and found.name) == family


@pytest.mark.parametrize(
    "pipeline, config, family",
    [
        ("StableDiffusion3Pipeline", {}, "sd3"),
        ("StableDiffusion3Pipeline", {"qk_norm": "rms_norm"}, "sd35"),
        ("FluxPipeline", {"guidance_embeds": True}, "flux"),
        ("FluxPipeline", {"guidance_embeds": False}, "flux-schnell"),
        ("QwenImagePipeline", {}, "qwen-image"),
        ("Flux2KleinPipeline", {}, "flux2-klein"),
        ("Flux2Pipeline", {}, "flux2"),
        ("WanPipeline", {}, "wan"),
        ("WanPipeline", {"boundary_ratio": None, "transformer_2": [None, None]}, "wan"),
        ("WanPipeline", {"boundary_ratio": 0.875, "transformer_2": ["diffusers", "WanTransformer3DModel"]}, "wan22"),
        ("WanImageToVideoPipeline", {}, None),
        ("ZImagePipeline", {"all_patch_size": [2]}, "z-image"),
        ("ChromaPipeline", {}, "chroma"),
        ("HunyuanVideo15Pipeline", {"task_type": "t2v"}, "hunyuan-video15"),
    ],
)
def test_a_local_directory_tells_its_family_by_its_config_files(tmp_path, pipeline, config, family):
    (tmp_path / "transformer").mkdir()
    index = {"_class_name": pipeline, **(config if pipeline == "WanPipeline" else {})}  # Wan: in model_index.json
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(config))
    found = family_of_name(str(tmp_path))
    assert (found and found.name) == family


def test_an_unsupported_pipeline_is_refused_naming_the_supported_ones():
    class HunyuanVideoPipeline:
        pass

    with pytest.raises(
        TypeError,
        match="unsupported pipeline HunyuanVideoPipeline; supported: ChromaPipeline, Flux2KleinPipeline, Flux2Pipeline, FluxPipeline, "
        "HunyuanVideo15Pipeline, QwenImagePipeline, StableDiffusion3Pipeline, WanPipeline, ZImagePipeline",
    ):
        Editor.from_pipeline(HunyuanVideoPipeline())


def test_flowedit_models_lists_every_family_with_its_defaults(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, family in FAMILIES.items():
        assert f"{name}: {family.title} ({family.pipeline}; offline: {family.offline or f'tiny-{name}'})" in out
        assert f"steps {family.defaults.steps}, n_max {family.defaults.n_max}" in out
    # every family but SD3 and FLUX.1 [dev], whose defaults are the reference implementation's, and digits-sd3,
    # whose are measured on its trained weights
    assert out.count("reasoned, not tuned on real weights") == len(FAMILIES) - 3


def test_the_readme_table_states_each_familys_defaults():
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([\w-]+)` \|.*\| (\d+, \d+, [^|]*?, \d+):", readme, flags=re.M))
    assert set(rows) == set(FAMILIES)
    for name, family in FAMILIES.items():
        d = family.defaults
        guidance = "-" if family.name == "flux-schnell" else f"{d.src_guidance:g} / {d.tar_guidance:g}"
        assert rows[name] == f"{d.steps}, {d.n_max}, {guidance}, {d.seed}", name


def test_an_unknown_offline_name_lists_the_offline_models_and_a_load_failure_keeps_its_advice(tmp_path):
    with pytest.raises(ValueError, match="no offline model 'tiny-wan21'; the offline models are tiny-sd3, tiny-sd35"):
        load("tiny-wan21")
    with pytest.raises(OSError) as caught:  # a folder without a pipeline in it
        load(str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"could not load the pipeline {str(tmp_path)!r}") and len(message) < 500
    assert message.endswith("on a machine with access to the hub")
