"""Straightforward loops written from the official code of the editors after FlowEdit, on a diffusers pipeline's own
components (the VAE, the scheduler's sigmas, ``encode_prompt``, the transformer), noise from torch's default generator
seeded with the seed and drawn with ``randn_like``, as the official code does.

- FlowAlign: FlowAlign/FlowAlign ``diffusion/editing/sd3_edit.py``, class ``SD3FlowAlign.sample`` (three transformer
  calls per step: ``v(p | c_tar)``, ``v(p | c_src)``, ``v(q | c_src)``).
- DVRF: anonymousdvrf/delta-velocity-rectified-flow ``models/DVRF.py``, ``DVRF_SD3`` (its "descending" loop).
- UniEdit-Flow: DSL-Lab/UniEdit-Flow ``UniEdit-Flow_diffusers/demo_edit.py`` with its ``UniInvEulerScheduler`` and
  ``UniEditEulerScheduler``, the scheduler steps written out (a pipeline call per step, two latents in one batch).

Where the official code departs from its paper, or these loops from the official code, the loop's docstring says so.
The official code is SD3's (UniEdit-Flow's also FLUX's): on FLUX the same loops run with FLUX's transformer call.
"""

import math

import numpy as np
import torch
from reference_loops import scaled_latents


class SD3Parts:
    """SD3 as the official code calls it: ``transformer(z, timestep = 1000 t, embeds, pooled)``; prompts without
    classifier-free guidance (FlowAlign's ``prepare_embed``); ``guided`` adds the empty prompt's rows."""

    def __init__(self, pipe, pixels):
        self.pipe, self.x = pipe, scaled_latents(pipe, pixels)

    def sigmas(self, steps):
        self.pipe.scheduler.set_timesteps(steps)
        return self.pipe.scheduler.sigmas  # (steps + 1,) float32, ending at 0

    def embed(self, prompt, guidance=1.0):
        embeds, _, pooled, _ = self.pipe.encode_prompt(prompt, None, None, do_classifier_free_guidance=False)
        return embeds, pooled

    def velocity(self, z, prompts, sigma):
        """``z`` (n, ...) with ``n`` prompts, one row each: the transformer's output, one call."""
        embeds, pooled = torch.cat([p[0] for p in prompts]), torch.cat([p[1] for p in prompts])
        with torch.no_grad():
            return self.pipe.transformer(
                hidden_states=z,
                timestep=(sigma * 1000).expand(z.shape[0]),
                encoder_hidden_states=embeds,
                pooled_projections=pooled,
                return_dict=False,
            )[0]


class FluxParts:
    """FLUX.1 as its pipeline calls it: packed latents, ``timestep = t``, the guidance embedding of each prompt."""

    def __init__(self, pipe, pixels):
        x = scaled_latents(pipe, pixels)
        B, C, h, w = x.shape
        self.pipe, self.x = pipe, pipe._pack_latents(x, B, C, h, w)
        self.image_ids = pipe._prepare_latent_image_ids(B, h // 2, w // 2, x.device, x.dtype)

    def sigmas(self, steps):
        config = self.pipe.scheduler.config
        slope = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len)
        mu = config.base_shift + slope * (self.x.shape[1] - config.base_image_seq_len)
        self.pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu)
        return self.pipe.scheduler.sigmas

    def embed(self, prompt, guidance=1.0):
        embeds, pooled, self.text_ids = self.pipe.encode_prompt(prompt=prompt, prompt_2=None)
        return embeds, pooled, guidance

    def velocity(self, z, prompts, sigma):
        embeds, pooled = torch.cat([p[0] for p in prompts]), torch.cat([p[1] for p in prompts])
        guidance = torch.tensor([float(p[2]) for p in prompts])
        with torch.no_grad():
            return self.pipe.transformer(
                hidden_states=z,
                timestep=sigma.expand(z.shape[0]),
                guidance=guidance if self.pipe.transformer.config.guidance_embeds else None,
                encoder_hidden_states=embeds,
                txt_ids=self.text_ids,
                img_ids=self.image_ids,
                pooled_projections=pooled,
                return_dict=False,
            )[0]


def reference_flowalign(m, src_prompt, tar_prompt, steps, w, zeta, seed, guidance=1.0):
    """``SD3FlowAlign.sample``: every step from the first, the target guided around the SOURCE prompt, the source
    unguided, ``xt += dt (vp - vq) + zeta (qt - sigma vq - pt + sigma vp)``. ``guidance`` is every prompt's embedded
    scale on FLUX (the official code is SD3's). The official ``sigma_next`` is 0 after the last step, as here; its
    timesteps/1000 are the scheduler's sigmas up to float32 rounding. The official class ignores its ``n_start``
    (every step edits), defaults to ``w = 7.0`` (``run_edit.py`` passes 7.5) and adds ``zeta`` once per step, not
    times ``dt``."""
    src, tar = m.embed(src_prompt, guidance), m.embed(tar_prompt, guidance)
    sigmas = m.sigmas(steps)
    zsrc = m.x
    xt = zsrc.clone()
    torch.manual_seed(seed)
    for i in range(steps):
        eps = torch.randn_like(zsrc)
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        qt = (1 - sigma) * zsrc + sigma * eps
        pt = xt + qt - zsrc
        vpc = m.velocity(pt, [tar], sigma)
        vpn = m.velocity(pt, [src], sigma)
        vp = vpn + w * (vpc - vpn)
        vq = m.velocity(qt, [src], sigma)
        xt = xt + (sigma_next - sigma) * (vp - vq) + zeta * (qt - sigma * vq - pt + sigma * vp)
    return xt


def reference_dvrf(m, src_prompt, tar_prompt, steps, n_max, eta, seed, src_g, tar_g):
    """``DVRF_SD3``'s descending loop: ``zt_tgt = (1 - t) z + t eps + eta_i t (z - x_src)`` (its Eq. 8), ``eta_i =
    eta i / T``, the gradient ``V_delta + (1 - eta_i)(z - x_src)`` (its Eq. 10), one SGD step. Departures: the SGD
    learning rate is FlowEdit's ``t_i - t_{i-1}`` (the official default is a constant 0.02, or a beta-shaped schedule
    for a string ``lr``), and the transformer runs in the model's dtype (the official casts its input to float16)."""
    src = [m.embed(""), m.embed(src_prompt)]
    tar = [m.embed(""), m.embed(tar_prompt)]
    sigmas = m.sigmas(steps)
    x_src = m.x
    zt_edit = x_src.clone()
    torch.manual_seed(seed)
    for i in range(steps):
        if steps - i > n_max:
            continue
        t_i, t_im1 = sigmas[i], sigmas[i + 1]
        eta_i = eta * i / steps
        fwd_noise = torch.randn_like(x_src)
        zt_src = (1 - t_i) * x_src + t_i * fwd_noise
        zt_tgt = (1 - t_i) * zt_edit + t_i * fwd_noise + eta_i * t_i * (zt_edit - x_src)
        out = m.velocity(torch.cat([zt_src, zt_src, zt_tgt, zt_tgt]), src + tar, t_i)
        su, sc, tu, tc = out.chunk(4)
        v_delta = tu + tar_g * (tc - tu) - (su + src_g * (sc - su))
        grad = v_delta + (1 - eta_i) * (zt_edit - x_src)
        zt_edit = zt_edit - (t_i - t_im1) * grad  # SGD on loss = (z * grad).sum()
    return zt_edit


def reference_uniedit(m, src_prompt, tar_prompt, steps, alpha, omega):
    """``demo_edit.py``: invert ``""`` at guidance 1 with ``UniInvEulerScheduler`` (alpha: early stop), then edit
    ``[src, tar]`` at guidance 1 with ``UniEditEulerScheduler``, both scheduler steps written out. The official
    pipeline takes the grid from its own ``set_timesteps`` (the scheduler's spacing and shift), as here. The
    official mask is the min-max of the SIGNED channel mean of ``v_tar - v_src`` (no absolute value), as here."""
    null, src, tar = m.embed(""), m.embed(src_prompt), m.embed(tar_prompt)
    sigmas = m.sigmas(steps).clone()  # decreasing, (steps + 1,)
    skip = steps - math.floor(alpha * steps)
    # UniInvEulerScheduler: sigmas flipped (0 first), the last `skip` cut off
    up = sigmas.flip(0)[: steps + 1 - skip]
    sample, latents = None, m.x.clone()
    for j in range(len(up)):
        v = m.velocity(latents, [null], up[j]).float()
        if sample is None:  # the first step: Euler from Z_0, Z_0 stored
            sample, latents = latents, latents + v * (up[j + 1] - up[j])
        else:
            sample = sample + (up[j] - up[j - 1]) * v
            latents = sample + (up[j + 1] - up[j]) * v if j + 1 < len(up) else sample
    # UniEditEulerScheduler: the first `skip` sigmas cut off; the pipeline's batch is the latent twice
    down = sigmas[skip:]
    latents = torch.cat([latents, latents])
    for i in range(len(down) - 1):
        sigma, sigma_next = down[i], down[i + 1]
        v_src, v_trg = m.velocity(latents, [src, tar], sigma).float().chunk(2)
        guidance = v_trg - v_src
        dim = 1 if guidance.ndim > 3 else 2  # [B, C, H, W] for SD3, [B, N, C] for FLUX
        mask = guidance.mean(dim=dim, keepdim=True)
        flat = mask.reshape(mask.shape[0], -1)
        shape = (mask.shape[0],) + (1,) * (mask.ndim - 1)
        low, high = flat.min(dim=1).values.reshape(shape), flat.max(dim=1).values.reshape(shape)
        mask = (mask - low) / (high - low + 1e-7)
        stride_corr = omega * (sigma_next - sigma) * (1 + mask) * guidance
        velocity_fusion = mask * v_trg + (1 - mask) * v_src
        latents = (
            latents
            + torch.cat([stride_corr, stride_corr])
            + (sigma_next - sigma) * torch.cat([velocity_fusion, velocity_fusion])
        )
    return latents[:1]
