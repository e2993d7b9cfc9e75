"""The tiny random SD3 / FLUX pipelines of the flowedit.testing package: real classes, seeded, runnable, reloadable."""

import ast
import functools
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import flowedit.testing
from flowedit.testing import tiny_flux_pipeline, tiny_sd3_pipeline

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

SIZE = 32  # image side: a multiple of 4 = VAE factor 2 x (SD3 patch 2 | FLUX 2x2 packing)
PROMPT = "a photo of a cat"

BUILDERS = {
    "sd3": (tiny_sd3_pipeline, diffusers.StableDiffusion3Pipeline),
    "flux-dev": (tiny_flux_pipeline, diffusers.FluxPipeline),
    "flux-schnell": (functools.partial(tiny_flux_pipeline, guidance_embeds=False), diffusers.FluxPipeline),
}
each_pipeline = pytest.mark.parametrize("name", list(BUILDERS))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads; on busy shared cores 2 OpenMP threads ran them 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name, **kwargs):
    pipe = BUILDERS[name][0](**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def modules(pipe):
    return {k: v for k, v in pipe.components.items() if isinstance(v, torch.nn.Module)}


def weights(pipe):
    return {f"{k}.{n}": t for k, m in modules(pipe).items() for n, t in m.state_dict().items()}


def generate(pipe, seed=0):
    gen = torch.Generator().manual_seed(seed)
    kw = dict(num_inference_steps=2, height=SIZE, width=SIZE, output_type="np")
    return pipe(prompt=PROMPT, generator=gen, **kw).images


@each_pipeline
def test_builds_the_real_pipeline_class_in_eval_mode(name):
    t0 = time.perf_counter()
    pipe = build(name)
    print(f"{name}: built in {time.perf_counter() - t0:.3f} s")  # first build also pays diffusers' lazy imports
    assert type(pipe) is BUILDERS[name][1]
    assert pipe.vae_scale_factor == 2 and pipe.vae.config.latent_channels == 4
    assert not any(m.training for m in modules(pipe).values())
    if name != "sd3":
        assert pipe.transformer.config.guidance_embeds == (name == "flux-dev")
        # FLUX.1 [dev]: shift by mu(L); [schnell]: the linear sigmas, as their scheduler configs say
        assert pipe.scheduler.config.use_dynamic_shifting == (name == "flux-dev")
        assert pipe.scheduler.config.shift == (3.0 if name == "flux-dev" else 1.0)
    else:
        assert pipe.scheduler.config.shift == 3.0


@each_pipeline
def test_same_seed_same_weights_bitwise_other_seed_other_weights(name):
    a, b, c = weights(build(name, seed=3)), weights(build(name, seed=3)), weights(build(name, seed=4))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for part in ("transformer.", "text_encoder.", "text_encoder_2.", "vae."):
        assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith(part) and a[k].is_floating_point())


@each_pipeline
def test_building_leaves_global_rng_and_default_dtype_alone(name):
    before = torch.random.get_rng_state()
    build(name)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.get_default_dtype() == torch.float32


def test_weights_do_not_depend_on_the_default_dtype():
    reference = weights(tiny_sd3_pipeline())
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        other = weights(tiny_sd3_pipeline())
    finally:
        torch.set_default_dtype(default)
    assert all(torch.equal(reference[k], other[k]) for k in reference)


@each_pipeline
def test_other_dtype_is_the_float32_weights_cast(name):
    reference, half = weights(build(name)), weights(build(name, dtype=torch.bfloat16))
    for k, t in reference.items():
        expected = t.to(torch.bfloat16) if t.is_floating_point() else t
        assert torch.equal(half[k], expected), k


@each_pipeline
def test_generates_finite_images_deterministically(name):
    pipe = build(name)
    image = generate(pipe)
    assert image.shape == (1, SIZE, SIZE, 3) and np.isfinite(image).all()
    assert np.array_equal(image, generate(pipe))
    assert not np.array_equal(image, generate(pipe, seed=1))


def test_sd3_encode_prompt_widths():
    """CLIP widths 32 + 48 = 80 are zero-padded to the T5 width 128; 77 CLIP + 256 T5 tokens; pooled 80."""
    pipe = build("sd3")
    embeds, negative, pooled, negative_pooled = pipe.encode_prompt(PROMPT, None, None, do_classifier_free_guidance=True)
    assert (
        embeds.shape
        == negative.shape
        == (1, 77 + 256, 128)
        == (1, 77 + 256, pipe.transformer.config.joint_attention_dim)
    )
    assert pooled.shape == negative_pooled.shape == (1, 80) == (1, pipe.transformer.config.pooled_projection_dim)
    assert all(torch.isfinite(t).all() for t in (embeds, negative, pooled, negative_pooled))
    assert torch.all(embeds[:, :77, 80:] == 0) and embeds[:, :77, :80].abs().sum() > 0


@pytest.mark.parametrize("name", ["flux-dev", "flux-schnell"])
def test_flux_encode_prompt_widths(name):
    pipe = build(name)
    embeds, pooled, text_ids = pipe.encode_prompt(PROMPT, None, max_sequence_length=64)
    assert embeds.shape == (1, 64, 32) == (1, 64, pipe.transformer.config.joint_attention_dim)
    assert pooled.shape == (1, 32) == (1, pipe.transformer.config.pooled_projection_dim)
    assert text_ids.shape == (64, 3)
    assert torch.isfinite(embeds).all() and torch.isfinite(pooled).all()


@each_pipeline
def test_tokenizers_match_their_encoders(name):
    pipe = build(name)
    clip, t5 = pipe.tokenizer, (pipe.tokenizer_3 if name == "sd3" else pipe.tokenizer_2)
    encoder = pipe.text_encoder.config
    assert (clip.bos_token_id, clip.eos_token_id, clip.pad_token_id) == (
        encoder.bos_token_id,
        encoder.eos_token_id,
        encoder.pad_token_id,
    )
    assert clip.model_max_length == 77 and t5.model_max_length == 512
    # known words are whole tokens; other words are spelled; other characters are unknown
    assert clip.convert_ids_to_tokens(clip(PROMPT).input_ids) == [
        "<|startoftext|>",
        *(w + "</w>" for w in PROMPT.split()),
        "<|endoftext|>",
    ]
    assert t5.convert_ids_to_tokens(t5(PROMPT).input_ids) == [*("\u2581" + w for w in PROMPT.split()), "</s>"]
    assert len(clip("zebra").input_ids) == 2 + 5 and clip("\u00e9").input_ids[1] == clip.unk_token_id
    assert t5("\u00e9").input_ids[-2] == t5.unk_token_id
    assert (
        max(t5(PROMPT).input_ids)
        < pipe.components["text_encoder_3" if name == "sd3" else "text_encoder_2"].config.vocab_size
    )


@each_pipeline
def test_save_and_from_pretrained_round_trip(name, tmp_path):
    """Weights, configs and tokenizers survive; images agree to float32 rounding only: safetensors
    maps tensors at unaligned addresses, and CPU matmul then rounds differently."""
    pipe = build(name)
    pipe.save_pretrained(tmp_path)
    loaded = diffusers.DiffusionPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded) is type(pipe)
    a, b = weights(pipe), weights(loaded)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key, tokenizer in pipe.components.items():
        if key.startswith("tokenizer"):
            assert type(loaded.components[key]) is type(tokenizer)
            assert loaded.components[key]("a photo of a zebra!").input_ids == tokenizer("a photo of a zebra!").input_ids
    np.testing.assert_allclose(generate(loaded), generate(pipe), rtol=0, atol=1e-5)


def test_flowedit_testing_imports_only_stdlib_and_torch_at_module_level():
    """The model libraries are imported inside the builders, so the core needs torch only (every module of the
    package, reached through its relative imports, is held to the same rule)."""
    allowed = {"__future__", "collections", "contextlib", "functools", "string", "typing", "torch"}
    files, seen = [Path(flowedit.testing.__file__)], set()
    while files:
        path = files.pop()
        seen.add(path)
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert names <= allowed, (path.name, names - allowed)
        own = {path.parent / f"{n.module}.py" for n in top if isinstance(n, ast.ImportFrom) and n.level == 1}
        files += [p for p in own if p not in seen]
    assert seen == set(Path(flowedit.testing.__file__).parent.glob("*.py"))  # the package's every module


def test_missing_models_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match=r"pip install 'flowtoy-flowedit\[models\]'"):
        tiny_flux_pipeline()


@pytest.mark.parametrize("name", ["wan", "wan22"])
def test_the_tiny_wans_edit_the_longest_clip_the_default_limits_accept(name):
    """Their rotary tables span what the limits accept: 257 frames are 65 latent frames (tables of 32 failed)."""
    from PIL import Image

    from flowedit.media.images import ImageLimits
    from flowedit.models import load

    frames = ImageLimits().max_frames
    editor = load(f"tiny-{name}")
    clip = [Image.new("RGB", (8, 8), (3 * i % 256, 0, 0)) for i in range(frames)]
    result = editor.edit_latents(clip, "a red car", "a blue bus", editor.settings(steps=2, n_max=1))
    assert result.source.shape == (1, 4, (frames - 1) // 4 + 1, 2, 2) and torch.isfinite(result.edited).all()
