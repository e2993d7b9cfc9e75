"""Straightforward transcriptions of the reference implementation's FlowEdit loops (fallenshock/FlowEdit), written
against a diffusers pipeline's own components: the VAE, the scheduler's timesteps, ``encode_prompt``, the
transformer, and noise drawn with ``randn_like`` from torch's default generator seeded with the seed, as the
reference does.

:data:`REFERENCES` finds a family's loop by its name; every loop takes ``(pipe, pixels, src_prompt, tar_prompt,
steps, n_max, n_avg, src_g, tar_g, seed)`` with ``pixels`` (1, 3, [F,] H, W) in [-1, 1] and returns the edited
latents as the family's adapter holds them.
"""

import numpy as np
import torch

REFERENCES = {}


def reference(*names):
    """Register a loop as the reference of the families ``names``."""

    def register(loop):
        REFERENCES.update(dict.fromkeys(names, loop))
        return loop

    return register


def scaled_latents(pipe, pixels, shift=True):
    """The VAE's mode, ``(mode - shift_factor) * scaling_factor`` (``shift=False``: ``mode * scaling_factor``)."""
    config = pipe.vae.config
    with torch.no_grad():
        mode = pipe.vae.encode(pixels).latent_dist.mode()
    return (mode - config.shift_factor) * config.scaling_factor if shift else mode * config.scaling_factor


@reference("sd3", "sd35")
def reference_sd3(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed, t5_tokens=256):
    """A straightforward transcription of the reference SD3 FlowEdit loop (n_min = 0, CFG on both branches)."""
    x_src = scaled_latents(pipe, pixels)  # (B, C, h, w), channels_last on CPU
    text = dict(do_classifier_free_guidance=True, negative_prompt="", max_sequence_length=t5_tokens)
    src = pipe.encode_prompt(src_prompt, None, None, **text)
    tar = pipe.encode_prompt(tar_prompt, None, None, **text)
    embeds = torch.cat([src[1], src[0], tar[1], tar[0]])
    pooled = torch.cat([src[3], src[2], tar[3], tar[2]])
    pipe.scheduler.set_timesteps(steps)
    timesteps = pipe.scheduler.timesteps
    torch.manual_seed(seed)  # the reference seeds torch's default generator and draws with randn_like
    z_edit = x_src.clone()
    for i, t in enumerate(timesteps):
        if steps - i > n_max:
            continue
        t_i = t / 1000
        t_im1 = timesteps[i + 1] / 1000 if i + 1 < len(timesteps) else torch.zeros_like(t_i)
        v_delta = torch.zeros_like(x_src)
        for _ in range(n_avg):
            noise = torch.randn_like(x_src)
            zt_src = (1 - t_i) * x_src + t_i * noise
            zt_tar = z_edit + zt_src - x_src
            with torch.no_grad():
                out = pipe.transformer(
                    hidden_states=torch.cat([zt_src, zt_src, zt_tar, zt_tar]),
                    timestep=t.expand(4),
                    encoder_hidden_states=embeds,
                    pooled_projections=pooled,
                    return_dict=False,
                )[0]
            su, sc, tu, tc = out.chunk(4)
            v_delta += (tu + tar_g * (tc - tu) - (su + src_g * (sc - su))) / n_avg
        z_edit = z_edit + (t_im1 - t_i) * v_delta
    return z_edit


@reference("digits-sd3")
def reference_digits_sd3(*args):
    """SD3's loop on the shipped digits pipeline: no T5, so one zero T5 token per prompt, as it was trained."""
    return reference_sd3(*args, t5_tokens=1)


@reference("flux", "flux-schnell")
def reference_flux(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed, n_min=0):
    """A straightforward transcription of the reference FLUX FlowEdit loop, its n_min phase included."""
    x_unpacked = scaled_latents(pipe, pixels)
    B, C, h, w = x_unpacked.shape
    x_src = pipe._pack_latents(x_unpacked, B, C, h, w)  # (B, L, 4C): the reference edits packed latents
    image_ids = pipe._prepare_latent_image_ids(B, h // 2, w // 2, x_src.device, x_src.dtype)
    config = pipe.scheduler.config
    slope = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len)
    mu = config.base_shift + slope * (x_src.shape[1] - config.base_image_seq_len)
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    src_embeds, src_pooled, text_ids = pipe.encode_prompt(prompt=src_prompt, prompt_2=None)
    tar_embeds, tar_pooled, _ = pipe.encode_prompt(prompt=tar_prompt, prompt_2=None)

    embedded = pipe.transformer.config.guidance_embeds  # FLUX.1 [dev]: the scale is an input; [schnell]: none

    def velocity(latents, embeds, pooled, guidance, t):
        with torch.no_grad():
            return pipe.transformer(
                hidden_states=latents,
                timestep=t.expand(latents.shape[0]) / 1000,
                guidance=torch.tensor([guidance]).expand(latents.shape[0]) if embedded else None,
                encoder_hidden_states=embeds,
                txt_ids=text_ids,
                img_ids=image_ids,
                pooled_projections=pooled,
                return_dict=False,
            )[0]

    torch.manual_seed(seed)  # the reference draws every noise with randn_like from torch's default generator
    z_edit = x_src.clone()
    for i, t in enumerate(timesteps):
        if steps - i > n_max:
            continue
        t_i, t_im1 = sigmas[i], sigmas[i + 1]
        if steps - i > n_min:
            v_delta = torch.zeros_like(x_src)
            for _ in range(n_avg):
                noise = torch.randn_like(x_src)
                zt_src = (1 - t_i) * x_src + t_i * noise
                zt_tar = z_edit + zt_src - x_src
                v_tar = velocity(zt_tar, tar_embeds, tar_pooled, tar_g, t)
                v_delta += (1 / n_avg) * (v_tar - velocity(zt_src, src_embeds, src_pooled, src_g, t))
            z_edit = z_edit + (t_im1 - t_i) * v_delta
        else:
            if i == steps - n_min:
                xt_tar = z_edit + (t_i * torch.randn_like(x_src) + (1 - t_i) * x_src) - x_src
            xt_tar = xt_tar + (t_im1 - t_i) * velocity(xt_tar, tar_embeds, tar_pooled, tar_g, t)
    return z_edit if n_min == 0 else xt_tar


@reference("qwen-image")
def reference_qwen(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed, negative=" "):
    """The same loop for diffusers' QwenImagePipeline: its VAE's mode normalised per channel (a one-frame video),
    its own prompt encoding (each prompt its own length), a separate transformer call per prompt and draw, and its
    true CFG (rescaled to the prompt's norm per token)."""
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        x_unpacked = ((vae.encode(pixels[:, :, None]).latent_dist.mode() - mean) / std)[:, :, 0]
    B, C, h, w = x_unpacked.shape
    x_src = pipe._pack_latents(x_unpacked, B, C, h, w)  # (B, L, 4C)
    config = pipe.scheduler.config
    slope = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len)
    mu = config.base_shift + slope * (x_src.shape[1] - config.base_image_seq_len)
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    src, tar, neg = (pipe.encode_prompt(prompt=p) for p in (src_prompt, tar_prompt, negative))

    def velocity(latents, prompt, t):
        embeds, mask = prompt
        with torch.no_grad():
            return pipe.transformer(
                hidden_states=latents,
                timestep=t.expand(B).to(latents.dtype) / 1000,
                guidance=None,
                encoder_hidden_states_mask=mask,
                encoder_hidden_states=embeds,
                img_shapes=[[(1, h // 2, w // 2)]] * B,
                return_dict=False,
            )[0]

    def guided(latents, prompt, scale, t):
        v = velocity(latents, prompt, t)
        if scale <= 1:
            return v
        v_neg = velocity(latents, neg, t)
        combined = v_neg + scale * (v - v_neg)
        return combined * (torch.norm(v, dim=-1, keepdim=True) / torch.norm(combined, dim=-1, keepdim=True))

    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, (src, src_g), (tar, tar_g))


@reference("flux2", "flux2-klein")
def reference_flux2(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """The same loop for diffusers' Flux2Pipeline / Flux2KleinPipeline, from the image: its own VAE encoding
    (patchified, batch-norm normalised), packing, ids, empirical mu, prompt encoding, a separate call per prompt,
    and [dev]'s guidance embedding or [klein]'s classifier-free guidance with an empty negative prompt."""
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    with torch.no_grad():
        patchified = pipe._encode_vae_image(pixels, generator=None)  # (B, 4C, h/2, w/2), normalised
    x_src = pipe._pack_latents(patchified)  # (B, L, 4C)
    image_ids = pipe._prepare_latent_ids(patchified)
    mu = compute_empirical_mu(image_seq_len=x_src.shape[1], num_steps=steps)
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    src, tar, neg = (pipe.encode_prompt(prompt=p) for p in (src_prompt, tar_prompt, ""))

    embedded = pipe.transformer.config.guidance_embeds

    def velocity(latents, prompt, t, scale=None):
        embeds, text_ids = prompt
        with torch.no_grad():
            return pipe.transformer(
                hidden_states=latents,
                timestep=t.expand(latents.shape[0]).to(latents.dtype) / 1000,
                guidance=torch.full([1], scale, dtype=torch.float32).expand(latents.shape[0]) if embedded else None,
                encoder_hidden_states=embeds,
                txt_ids=text_ids,
                img_ids=image_ids,
                return_dict=False,
            )[0]

    def guided(latents, prompt, scale, t):
        v = velocity(latents, prompt, t, scale)
        if embedded or scale <= 1:
            return v
        v_neg = velocity(latents, neg, t)
        return v_neg + scale * (v - v_neg)

    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, (src, src_g), (tar, tar_g))


def _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, source, target):
    """The reference's FlowEdit loop (n_min = 0) over a scheduler's ``timesteps`` and ``sigmas``, noise from
    ``torch.manual_seed(seed)`` with ``randn_like``; ``guided(z, prompt, scale, t)`` is the guided velocity and
    ``source`` / ``target`` are the ``(prompt, scale)`` of each branch."""
    torch.manual_seed(seed)
    steps, z_edit = len(timesteps), x_src.clone()
    for i, t in enumerate(timesteps):
        if steps - i > n_max:
            continue
        t_i, t_im1 = sigmas[i], sigmas[i + 1]
        v_delta = torch.zeros_like(x_src)
        for _ in range(n_avg):
            zt_src = (1 - t_i) * x_src + t_i * torch.randn_like(x_src)
            zt_tar = z_edit + zt_src - x_src
            v_delta += (guided(zt_tar, *target, t) - guided(zt_src, *source, t)) / n_avg
        z_edit = z_edit + (t_im1 - t_i) * v_delta
    return z_edit


@reference("wan", "wan22")
def reference_wan(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """The same loop for diffusers' WanPipeline (2.1, or 2.2 with two experts), from the video: the VAE's mode
    normalised as the pipeline's latents (``(x - mean) * (1 / std)``), the scheduler's grid, ``encode_prompt`` with
    the empty negative prompt, a separate call for the prompt and the negative one (as the pipeline), and each
    step's expert chosen by the pipeline's rule, ``timestep >= boundary_ratio * num_train_timesteps``."""
    vae = pipe.vae
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        x_src = (vae.encode(pixels).latent_dist.mode() - mean) * inverse_std
    pipe.scheduler.set_timesteps(steps)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    sigma_of = {int(t): float(s) for t, s in zip(timesteps, sigmas, strict=False)}
    ratio = pipe.config.boundary_ratio
    boundary = None if ratio is None else ratio * pipe.scheduler.config.num_train_timesteps

    def encoded(prompt):
        with torch.no_grad():
            return pipe.encode_prompt(
                prompt, negative_prompt="", do_classifier_free_guidance=True, max_sequence_length=512
            )

    src, tar = encoded(src_prompt), encoded(tar_prompt)

    def guided(z, prompt, scale, t):
        model = pipe.transformer if boundary is None or t >= boundary else pipe.transformer_2
        timestep = torch.full((z.shape[0],), 1000.0 * sigma_of[int(t)])  # the exact 1000 t, not the rounded one
        if pipe.config.expand_timesteps:  # Wan 2.2 TI2V: one timestep per token, (B, F' h/2 w/2), as its pipeline
            tokens = z.shape[2] * (z.shape[3] // 2) * (z.shape[4] // 2)
            timestep = timestep[:, None].expand(-1, tokens)
        with torch.no_grad():
            cond = model(hidden_states=z, timestep=timestep, encoder_hidden_states=prompt[0], return_dict=False)[0]
            if scale <= 1:
                return cond
            uncond = model(hidden_states=z, timestep=timestep, encoder_hidden_states=prompt[1], return_dict=False)[0]
        return uncond + scale * (cond - uncond)

    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, (src, src_g), (tar, tar_g))


@reference("z-image")
def reference_z_image(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """The same loop for diffusers' ZImagePipeline: its float32 sigmas and mu, its ``(1000 - t) / 1000`` timestep,
    list inputs (each prompt its own length), a separate call per prompt, its CFG ``v + w (v - v_neg)`` (on for
    ``w > 0``) and the negated output."""
    from diffusers.pipelines.z_image.pipeline_z_image import calculate_shift, get_default_z_image_sigmas

    x_src = scaled_latents(pipe, pixels)  # (B, C, h, w)
    h, w = x_src.shape[-2:]
    config = pipe.scheduler.config
    mu = calculate_shift(
        (h // 2) * (w // 2),
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    pipe.scheduler.set_timesteps(sigmas=get_default_z_image_sigmas(steps), mu=mu)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    with torch.no_grad():
        src, tar, neg = (
            pipe.encode_prompt(p, do_classifier_free_guidance=False)[0] for p in (src_prompt, tar_prompt, "")
        )

    def velocity(z, prompt, t):
        timestep = (1000 - t.expand(z.shape[0])) / 1000
        latents = list(z.to(pipe.transformer.dtype).unsqueeze(2).unbind(dim=0))
        with torch.no_grad():
            out = pipe.transformer(latents, timestep, prompt, return_dict=False)[0]
        return torch.stack([o.float() for o in out]).squeeze(2)

    def guided(z, prompt, scale, t):
        pos = velocity(z, prompt, t)
        return -(pos + scale * (pos - velocity(z, neg, t))) if scale > 0 else -pos

    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, (src, src_g), (tar, tar_g))


@reference("chroma")
def reference_chroma(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """The same loop for diffusers' ChromaPipeline: FLUX.1's packing, ids and mu, its masked T5 prompts (the mask
    extended over the image tokens), a separate call for the prompt and the empty negative one, CFG on for w > 1."""
    from diffusers.pipelines.chroma.pipeline_chroma import calculate_shift

    x_unpacked = scaled_latents(pipe, pixels)
    B, C, h, w = x_unpacked.shape
    x_src = pipe._pack_latents(x_unpacked, B, C, h, w)  # (B, L, 4C)
    image_ids = pipe._prepare_latent_image_ids(B, h // 2, w // 2, x_src.device, x_src.dtype)
    config = pipe.scheduler.config
    mu = calculate_shift(
        x_src.shape[1],
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas

    def encoded(prompt):  # ((embeds, text ids, mask) of the prompt, the same of the negative prompt "")
        with torch.no_grad():
            out = pipe.encode_prompt(prompt=prompt, negative_prompt="", do_classifier_free_guidance=True)
        return out[:3], out[3:]

    def velocity(z, embeds, text_ids, mask, t):
        attention_mask = pipe._prepare_attention_mask(z.shape[0], z.shape[1], z.dtype, mask)
        with torch.no_grad():
            return pipe.transformer(
                hidden_states=z,
                timestep=t.expand(z.shape[0]).to(z.dtype) / 1000,
                encoder_hidden_states=embeds,
                txt_ids=text_ids,
                img_ids=image_ids,
                attention_mask=attention_mask,
                return_dict=False,
            )[0]

    def guided(z, prompt, scale, t):
        v = velocity(z, *prompt[0], t)
        if scale <= 1:
            return v
        v_neg = velocity(z, *prompt[1], t)
        return v_neg + scale * (v - v_neg)

    source, target = (encoded(src_prompt), src_g), (encoded(tar_prompt), tar_g)
    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, source, target)


@reference("hunyuan-video15")
def reference_hunyuan_video15(pipe, pixels, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """The same loop for diffusers' HunyuanVideo15Pipeline (text-to-video), from the video: the VAE's mode times
    its scaling factor, the sigmas ``linspace(1, 0, T + 1)[:-1]``, ``encode_prompt`` for the prompt and the empty
    negative one, the zero image condition and image embeddings, a separate call per prompt, and its guider's
    ``v_neg + w (v - v_neg)`` (with our scale; off for w <= 1, as every family here)."""
    x_src = scaled_latents(pipe, pixels, shift=False)  # (B, C, F', h, w): its VAE has no shift
    pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1])
    timesteps, sigmas = pipe.scheduler.timesteps, pipe.scheduler.sigmas
    dtype = pipe.transformer.dtype
    with torch.no_grad():
        src, tar, neg = (pipe.encode_prompt(prompt=p, dtype=dtype) for p in (src_prompt, tar_prompt, ""))
    condition, mask = pipe.prepare_cond_latents_and_mask(x_src, dtype, x_src.device)
    image_embeds = torch.zeros(1, pipe.vision_num_semantic_tokens, pipe.vision_states_dim, dtype=dtype)

    def velocity(z, prompt, t):
        embeds, embeds_mask, embeds_2, embeds_mask_2 = prompt
        model_input = torch.cat([z, condition.expand_as(z), mask.expand(z.shape[0], -1, -1, -1, -1)], dim=1)
        with torch.no_grad():
            return pipe.transformer(
                hidden_states=model_input,
                image_embeds=image_embeds.expand(z.shape[0], -1, -1),
                timestep=t.expand(z.shape[0]).to(model_input.dtype),
                encoder_hidden_states=embeds,
                encoder_attention_mask=embeds_mask,
                encoder_hidden_states_2=embeds_2,
                encoder_attention_mask_2=embeds_mask_2,
                return_dict=False,
            )[0]

    def guided(z, prompt, scale, t):
        cond = velocity(z, prompt, t)
        if scale <= 1:
            return cond
        uncond = velocity(z, neg, t)
        return uncond + scale * (cond - uncond)

    return _reference_loop(x_src, timesteps, sigmas, n_max, n_avg, seed, guided, (src, src_g), (tar, tar_g))
