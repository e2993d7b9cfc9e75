"""The editors after FlowEdit on the model families: settings, one transformer call per step, equality with loops
written from each method's official code on tiny SD3 and FLUX, masks, the command line, batch files and records."""

import contextlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from reference_after import FluxParts, SD3Parts, reference_dvrf, reference_flowalign, reference_uniedit

import flowedit
from flowedit.cli import main
from flowedit.models import FAMILIES, Editor, load
from flowedit.models import _methods as methods_module
from flowedit.models._settings import METHOD_DEFAULTS
from flowedit.testing import tiny_flux_pipeline, tiny_sd3_pipeline

AFTER = ("flowalign", "dvrf", "dds", "uniedit")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads; on busy shared cores 2 OpenMP threads ran them 30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sd3():
    return Editor.from_pipeline(tiny_sd3_pipeline(seed=0))


@pytest.fixture(scope="module")
def flux():
    return Editor.from_pipeline(tiny_flux_pipeline(seed=0))


def picture(width=64, height=48, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def pixels(editor):
    return editor.pipe.image_processor.preprocess(editor.load_image(picture()))


def rows_per_call(editor, settings, image=None, **local):
    """Run one edit; the batch size of every transformer call, and the result."""
    rows = []
    hook = editor.pipe.transformer.register_forward_hook(
        lambda m, args, kwargs, out: rows.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        result = editor.edit_latents(image or picture(), "a cat", "a dog", settings, **local)
    finally:
        hook.remove()
    assert result.model_calls == len(rows)
    return rows, result


# -- settings ---------------------------------------------------------------------------------------------------
def test_choosing_a_method_brings_its_official_settings_unless_given():
    sd3 = FAMILIES["sd3"].defaults
    flowalign = sd3.replace(method="flowalign")
    assert (flowalign.steps, flowalign.n_max, flowalign.src_guidance, flowalign.tar_guidance) == (33, 33, 1.0, 7.5)
    assert flowalign.strengths == {"zeta": 0.01} and flowalign.zeta == 0.01
    uniedit = sd3.replace(method="uniedit")
    assert (uniedit.steps, uniedit.n_max, uniedit.omega, uniedit.integration_steps) == (15, 9, 5.0, 18)
    assert sd3.replace(method="uniedit", steps=10).n_max == 6  # floor(alpha T), alpha = 0.6
    assert sd3.replace(method="dvrf", tar_guidance=12.0, eta=0.5).strengths == {"eta": 0.5}
    assert sd3.replace(method="dvrf").tar_guidance == 16.5 and sd3.replace(method="dds").strengths == {}
    assert sd3.replace(method="inversion", solver="fireflow").strengths == {"solver": "fireflow"}
    # a new method drops the old one's strengths; an unchanged method keeps the settings it has
    assert sd3.replace(method="flowalign").replace(method="dvrf").zeta is None
    assert flowalign.replace(zeta=0.0).steps == 33 and sd3.replace() == sd3
    assert set(METHOD_DEFAULTS) <= set(methods_module.MASKED) | {"uniedit", "inversion"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(zeta=0.1), "zeta 0.1 applies to method flowalign only, not flowedit; leave it out"),
        (dict(method="dvrf", omega=3), "omega 3.0 applies to method uniedit only, not dvrf; leave it out"),
        (dict(method="dds", eta=0.5), "eta 0.5 applies to method dvrf only, not dds; leave it out"),
        (dict(method="flowalign", solver="fireflow"), "solver 'fireflow' applies to method inversion only"),
        (dict(method="dvrf", eta=1.5), r"eta must lie in \[0.0, 1.0\], got 1.5"),
        (dict(method="flowalign", zeta=-0.1), r"zeta must lie in \[0.0, 10.0\], got -0.1"),
        (dict(method="inversion", solver="rk9"), "unknown solver 'rk9'; choose one of euler, midpoint, rf-solver"),
        (dict(method="uniedit", n_avg=2), "n_avg applies to method flowedit only, not uniedit"),
    ],
)
def test_a_strength_of_another_method_or_out_of_bounds_is_one_line(options, message):
    with pytest.raises(ValueError, match=message) as info:
        FAMILIES["sd3"].defaults.replace(**options)
    assert "\n" not in str(info.value)


# -- one call per step, each method's rows ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "rows"),
    [
        (dict(method="flowalign", steps=4), [3] * 4),  # [q | c_src, p | c_src, p | c_tar]
        (dict(method="flowalign", steps=4, src_guidance=3.5), [4] * 4),  # a guided source: [q | "", q | c_src, ...]
        (dict(method="flowalign", steps=4, tar_guidance=1.0), [2] * 4),  # w = 1: FlowEdit's unguided pair
        (dict(method="dvrf", steps=4, n_max=3), [4] * 3),  # FlowEdit's CFG pair
        (dict(method="dds", steps=4), [4] * 4),
        (dict(method="uniedit", steps=5), [1] * 4 + [2] * 3),  # Uni-Inv n_max + 1 calls, then the pair
        (dict(method="inversion", steps=4, n_max=3, solver="fireflow"), [2] * 8),  # 1 per step, +1 per direction
        (dict(method="inversion", steps=4, n_max=3, solver="rf-solver"), [2] * 12),
    ],
)
def test_each_method_makes_one_transformer_call_per_evaluation_with_all_its_rows(sd3, options, rows):
    settings = sd3.settings(**options)
    seen, result = rows_per_call(sd3, settings)
    assert seen == rows and torch.isfinite(result.edited).all() and result.latent_mse > 0


def test_the_editor_runs_the_very_editors_flowtoy_uses():
    import flowtoy._edit

    for name in ("flowalign", "dvrf", "uniedit"):
        assert getattr(methods_module, name) is getattr(flowedit, name) is getattr(flowtoy._edit, name)


# -- equality with the official code -----------------------------------------------------------------------------
def test_sd3_flowalign_equals_the_official_loop(sd3):
    settings = sd3.settings(method="flowalign", steps=5, seed=7)  # official: w 7.5, zeta 0.01, source unguided
    ours = sd3.edit_latents(picture(), "a cat", "a dog", settings)
    ref = reference_flowalign(SD3Parts(sd3.pipe, pixels(sd3)), "a cat", "a dog", 5, 7.5, 0.01, 7)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)  # float32: three calls vs one batch


def test_flux_flowalign_equals_the_official_loop_with_flux_calls(flux):
    settings = flux.settings(method="flowalign", steps=4, src_guidance=1.5, tar_guidance=3.0, zeta=0.05, seed=3)
    ours = flux.edit_latents(picture(), "a cat", "a dog", settings)
    ref = reference_flowalign(FluxParts(flux.pipe, pixels(flux)), "a cat", "a dog", 4, 3.0, 0.05, 3, guidance=1.5)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("method", "eta"), [("dvrf", 1.0), ("dvrf", 0.4), ("dds", 0.0)])
def test_sd3_dvrf_and_dds_equal_the_official_loop(sd3, method, eta):
    options = {"eta": eta} if method == "dvrf" else {}
    settings = sd3.settings(method=method, steps=5, n_max=4, seed=11, **options)  # guidance 6 and 16.5
    ours = sd3.edit_latents(picture(), "a cat", "a dog", settings)
    ref = reference_dvrf(SD3Parts(sd3.pipe, pixels(sd3)), "a cat", "a dog", 5, 4, eta, 11, 6.0, 16.5)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("model", "parts"), [("sd3", SD3Parts), ("flux", FluxParts)])
def test_uniedit_equals_the_official_schedulers(model, parts, request):
    editor = request.getfixturevalue(model)
    settings = editor.settings(method="uniedit", steps=6, omega=3.0)  # n_max = floor(0.6 * 6) = 3
    ours = editor.edit_latents(picture(), "a cat", "a dog", settings)
    ref = reference_uniedit(parts(editor.pipe, pixels(editor)), "a cat", "a dog", 6, 0.6, 3.0)
    torch.testing.assert_close(ours.edited, ref, rtol=1e-5, atol=1e-5)


def test_the_same_prompt_leaves_the_source_where_the_method_promises_it(sd3):
    # at z = x_src both branches see the same point and prompt: no update at any step, bit for bit (FlowAlign at
    # its official w 7.5 and zeta 0.01 too: its target guided around the source prompt is then the source's)
    for settings in (
        sd3.settings(method="flowalign", steps=3),
        sd3.settings(method="dvrf", steps=3, tar_guidance=6.0),
        sd3.settings(method="dds", steps=3, tar_guidance=6.0),
    ):
        result = sd3.edit_latents(picture(), "a cat", "a cat", settings)
        assert torch.equal(result.edited, result.source)


# -- masks --------------------------------------------------------------------------------------------------------
def right_half(size=(64, 48)):
    mask = Image.new("L", size, 0)
    mask.paste(255, (size[0] // 2, 0, size[0], size[1]))
    return mask


@pytest.mark.parametrize("method", ["flowalign", "dvrf"])
def test_a_mask_keeps_the_source_where_it_is_black(sd3, method):
    result = sd3.edit_latents(picture(), "a cat", "a dog", sd3.settings(method=method, steps=3), mask=right_half())
    kept = result.edited[..., : result.edited.shape[-1] // 2]
    assert torch.equal(kept, result.source[..., : result.source.shape[-1] // 2])
    assert not torch.equal(result.edited, result.source)


def test_uniedit_refuses_a_mask_in_one_line(sd3):
    with pytest.raises(
        ValueError, match=r"^a mask applies to methods flowedit, flowalign, dvrf, dds only, not uniedit$"
    ):
        sd3.edit_latents(picture(), "a", "b", sd3.settings(method="uniedit", steps=3), mask=right_half())


# -- every family, the command line, batch files, records ---------------------------------------------------------
@pytest.fixture(scope="module", params=list(FAMILIES))
def family_editor(request):
    return load(f"tiny-{request.param}")


def test_every_family_runs_uniedit_with_its_channel_axis(family_editor):
    editor = family_editor
    source = [picture()] * 5 if editor.video else picture()
    with pytest.warns(UserWarning) if editor.video else contextlib.nullcontext():
        result = editor.edit_latents(source, "a cat", "a dog", editor.settings(method="uniedit", steps=3))
    assert result.model_calls == 3 and torch.isfinite(result.edited).all()  # n_max 1: 2 inverting, 1 editing


@pytest.mark.parametrize("method", ["flowalign", "dvrf", "dds"])
def test_every_family_runs_flowalign_dvrf_and_dds(family_editor, method):
    editor = family_editor
    source = [picture()] * 5 if editor.video else picture()
    with pytest.warns(UserWarning) if editor.video else contextlib.nullcontext():
        result = editor.edit_latents(source, "a cat", "a dog", editor.settings(method=method, steps=2))
    assert result.model_calls == 2 and torch.isfinite(result.edited).all()


def test_the_command_line_and_a_batch_file_take_the_method_and_its_strength(folder, capsys):
    out = folder / "edit.png"
    args = ["--model", "tiny-sd3", "--steps", "3"]
    assert (
        main(
            [
                "edit",
                "--image",
                str(folder / "a.png"),
                "--source",
                "a",
                "--target",
                "b",
                "--out",
                str(out),
                "--method",
                "flowalign",
                "--zeta",
                "0.02",
                *args,
            ]
        )
        == 0
    )
    assert "flowalign, 3 steps, n_max 3" in capsys.readouterr().out
    (folder / "edits.yaml").write_text(
        "- input_img: a.png\n  source_prompt: a cat\n  target_prompts: [a dog, a fox]\n  target_codes: [dog, fox]\n"
        "  method: uniedit\n  omega: 2.5\n"
    )
    assert main(["run", str(folder / "edits.yaml"), "--out-dir", str(folder / "run"), *args]) == 0
    records = [json.loads(line) for line in (folder / "run" / "results.jsonl").read_text().splitlines()]
    assert {(r["method"], r["omega"], r["n_max"], r["model_calls"]) for r in records} == {("uniedit", 2.5, 1, 3)}
    assert all("zeta" not in r and "eta" not in r for r in records)  # only the method's own strengths
    capsys.readouterr()
    again = ["run", str(folder / "edits.yaml"), "--out-dir", str(folder / "other"), *args, "--eta", "0.5"]
    assert main(again) == 2  # an entry's method wins over the run's; the run's eta is then another method's
    assert "eta 0.5 applies to method dvrf only, not uniedit; leave it out" in capsys.readouterr().err


def test_a_sweep_runs_a_method_over_n_max_and_guidance(folder):
    out = folder / "sweep"
    assert (
        main(
            [
                "sweep",
                "--image",
                str(folder / "a.png"),
                "--source",
                "a",
                "--target",
                "b",
                "--out-dir",
                str(out),
                "--model",
                "tiny-sd3",
                "--steps",
                "3",
                "--method",
                "dvrf",
                "--eta",
                "0.5",
                "--n-max",
                "2,3",
                "--tar-guidance",
                "4",
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["eta"], r["n_max"], r["tar_guidance"]) for r in records) == [
        ("dvrf", 0.5, 2, 4.0),
        ("dvrf", 0.5, 3, 4.0),
    ]
