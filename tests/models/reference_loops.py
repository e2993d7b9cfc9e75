"""Straightforward transcriptions of the reference implementation's FlowEdit loops (fallenshock/FlowEdit), written
against a diffusers pipeline's own components: the scheduler's timesteps, ``encode_prompt``, the transformer, and
noise drawn with ``randn_like`` from torch's default generator seeded with the seed, as the reference does."""

import numpy as np
import torch


def reference_sd3(pipe, x_src, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed):
    """A straightforward transcription of the reference SD3 FlowEdit loop (n_min = 0, CFG on both branches)."""
    src = pipe.encode_prompt(src_prompt, None, None, do_classifier_free_guidance=True, negative_prompt="")
    tar = pipe.encode_prompt(tar_prompt, None, None, do_classifier_free_guidance=True, negative_prompt="")
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


def reference_flux(pipe, x_unpacked, src_prompt, tar_prompt, steps, n_max, n_min, n_avg, src_g, tar_g, seed):
    """A straightforward transcription of the reference FLUX FlowEdit loop, its n_min phase included."""
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


def reference_qwen(pipe, x_unpacked, src_prompt, tar_prompt, steps, n_max, n_avg, src_g, tar_g, seed, negative=" "):
    """The same loop for diffusers' QwenImagePipeline: its own prompt encoding (each prompt its own length), a
    separate transformer call per prompt and draw, and its true CFG (rescaled to the prompt's norm per token)."""
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
