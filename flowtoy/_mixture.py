"""Exact rectified-flow quantities of a Gaussian mixture.

Data ``x0 ~ sum_k w_k N(mu_k, S_k)`` in ``R^d``, noise ``eps ~ N(0, I)``, and the straight path
``z_t = (1 - t) x0 + t eps`` (``t = 0`` data, ``t = 1`` noise). Write ``a = 1 - t`` and
``S_k = U_k diag(lam_k) U_k^T``. Given the component ``k``, ``z_t`` is Gaussian:

    z_t | k ~ N(a mu_k, Sigma_k(t)),   Sigma_k(t) = a^2 S_k + t^2 I = U_k diag(s_k) U_k^T,
    s_k = a^2 lam_k + t^2,

so the marginal ``p_t`` is again a mixture (:meth:`GaussianMixture.marginal`), and with
``y_k = U_k^T (z - a mu_k)`` and responsibilities ``r_k(z) = P(k | z_t = z)`` (softmax of the
component log-densities, computed in log space) every conditional expectation is closed form:

    E[x0  | z] = sum_k r_k (mu_k + a U_k (lam_k / s_k * y_k))
    E[eps | z] = sum_k r_k  t U_k (y_k / s_k)
    score      = grad log p_t(z) = -sum_k r_k U_k (y_k / s_k)
    v(z, t)    = E[eps - x0 | z] = sum_k r_k (U_k ((t - a lam_k) / s_k * y_k) - mu_k).

Nothing divides by ``t`` or ``1 - t``: at ``t = 0`` ``s_k = lam_k`` and ``v = -z``; at ``t = 1``
``s_k = 1`` and ``v = z - E[x0]``. Variances only need to be positive normal numbers (at least
``torch.finfo(dtype).tiny``; a subnormal one makes ``1 / lam_k`` overflow).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from flowedit import check_generator

from ._checks import check_dtype, check_int, short
from ._kernels import posterior_sum, two_mode_velocity
from ._settings import setting

__all__ = ["GaussianMixture", "check_mixture"]

_LOG_2PI = math.log(2 * math.pi)
_SMALL_BATCH = 2048  # points x components below which the plain formula is faster than the kernels


def _tensor(value: Any, dtype: torch.dtype, name: str) -> torch.Tensor:
    try:
        out = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be array-like numbers, got {type(value).__name__}") from err
    out = out.to(dtype)
    if not torch.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or inf")
    return out


def _eigen_covariances(covs: Any, K: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return ``(lam (K, d), U (K, d, d) or None)`` with ``S_k = U_k diag(lam_k) U_k^T``; None means U = I."""
    c = _tensor(covs, dtype, "covs")
    if c.ndim == 0:
        lam, U = c.expand(K, d).clone(), None
    elif c.shape == (K,):
        lam, U = c[:, None].expand(K, d).clone(), None
    elif c.shape == (K, d):
        lam, U = c.clone(), None
    elif c.shape == (K, d, d):
        scale = c.abs().amax(dim=(1, 2), keepdim=True)
        asym = (c - c.transpose(1, 2)).abs().amax(dim=(1, 2), keepdim=True)
        bad = (asym > 100 * torch.finfo(dtype).eps * scale).flatten().nonzero().flatten()
        if bad.numel():
            raise ValueError(f"covs[{bad[0].item()}] is not symmetric; a covariance matrix must equal its transpose")
        off_diagonal = c - torch.diag_embed(torch.diagonal(c, dim1=1, dim2=2))
        if not off_diagonal.any():
            lam, U = torch.diagonal(c, dim1=1, dim2=2).clone(), None
        else:
            lam, U = torch.linalg.eigh(0.5 * (c + c.transpose(1, 2)))
    else:
        raise ValueError(
            f"covs must be a scalar variance, shape ({K},) (one variance per component), ({K}, {d}) "
            f"(diagonals) or ({K}, {d}, {d}) (full matrices) for {K} components in {d} dimensions; "
            f"got shape {tuple(c.shape)}"
        )
    bad = (lam <= 0).any(dim=1).nonzero().flatten()
    if bad.numel():
        k = bad[0].item()
        raise ValueError(
            f"covs[{k}] is not positive definite (smallest eigenvalue {lam[k].min().item():.3g}); variances must be > 0"
        )
    tiny = torch.finfo(dtype).tiny  # below it variances are subnormal: 1 / lam overflows
    bad = (lam < tiny).any(dim=1).nonzero().flatten()
    if bad.numel():
        k = bad[0].item()
        raise ValueError(
            f"covs[{k}] has a variance of {lam[k].min().item():.3g}, below the smallest normal {_name(dtype)} number; "
            f"variances must be >= {tiny:.3g}"
        )
    return lam, U


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class GaussianMixture:
    """A Gaussian mixture in ``R^d`` with the closed-form flow quantities of its rectified-flow path.

    Args:
        means: ``(K, d)`` component means.
        covs: a scalar variance shared by all components; ``(K,)`` one isotropic variance each;
            ``(K, d)`` diagonal variances; or ``(K, d, d)`` symmetric positive-definite matrices.
            Every variance (eigenvalue) must be at least ``torch.finfo(dtype).tiny``.
            A 2-D array is always read as ``(K, d)`` diagonals: to share one full matrix ``S``
            among ``K`` components pass ``S`` stacked ``K`` times, shape ``(K, d, d)``.
        weights: ``(K,)`` positive weights summing to one (default: equal weights).
        dtype: parameter dtype (float64 by default). Inputs of another floating dtype are
            evaluated in their own dtype, half precision (float16, bfloat16) in float32, and the
            result has the input's dtype; numpy arrays are accepted wherever a tensor is.

    All point arguments have shape ``(..., d)``; ``t`` is a float or 0-d tensor in ``[0, 1]``.
    """

    def __init__(self, means: Any, covs: Any = 1.0, weights: Any = None, *, dtype: torch.dtype = torch.float64):
        dtype = check_dtype(dtype)
        means = _tensor(means, dtype, "means")
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1, got {tuple(means.shape)}")
        K, d = means.shape
        lam, U = _eigen_covariances(covs, K, d, dtype)
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=dtype)
        weights = _tensor(weights, dtype, "weights")
        if weights.shape != (K,):
            raise ValueError(
                f"weights must have shape ({K},) to match means {tuple(means.shape)}, got {tuple(weights.shape)}"
            )
        if (weights <= 0).any():
            raise ValueError(f"weights must all be positive, got {weights.tolist()}")
        if abs(weights.sum().item() - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, got sum {weights.sum().item():.8g}; divide them by their sum")
        self._init(means, lam, U, torch.log(weights / weights.sum()))

    def _init(self, means: torch.Tensor, lam: torch.Tensor, U: torch.Tensor | None, log_weights: torch.Tensor):
        self.means, self.lam, self.U, self.log_weights = means, lam, U, log_weights
        # Every component has the same axis-aligned covariance: the quadratic terms of the log
        # densities cancel in the responsibilities (see _kernels.two_mode_velocity).
        self._shared_diagonal = U is None and bool((lam == lam[:1]).all())
        self._cache: dict[tuple, tuple] = {}

    @classmethod
    def from_eigen(cls, means, lam, U, log_weights) -> GaussianMixture:
        mixture = cls.__new__(cls)
        mixture._init(means, lam, U, log_weights)
        return mixture

    # ----------------------------------------------------------------------------------------------
    # Parameters
    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def weights(self) -> torch.Tensor:
        return self.log_weights.exp()

    @property
    def covs(self) -> torch.Tensor:
        """``(K, d, d)`` covariance matrices ``U_k diag(lam_k) U_k^T``."""
        if self.U is None:
            return torch.diag_embed(self.lam)
        return self.U @ torch.diag_embed(self.lam) @ self.U.transpose(1, 2)

    def mean(self) -> torch.Tensor:
        """``E[x0]``, shape ``(d,)``."""
        return self.weights @ self.means

    def __repr__(self) -> str:
        kind = "full" if self.U is not None else ("shared diagonal" if self._shared_diagonal else "diagonal")
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, covariances={kind}, dtype={self.means.dtype})"

    def _params(self, like: torch.Tensor):
        key = (like.dtype, like.device)
        if key not in self._cache or any(p.requires_grad for p in (self.means, self.lam)):
            cast = [None if p is None else p.to(like) for p in (self.means, self.lam, self.U, self.log_weights)]
            if like.dtype != self.means.dtype:
                self._check_cast(*cast[:2])
            self._cache[key] = tuple(cast)
        return self._cache[key]

    def _check_cast(self, means: torch.Tensor, lam: torch.Tensor) -> None:
        """Raise unless every mean stays finite and every variance normal in the working dtype of the points."""
        info, ours = torch.finfo(means.dtype), _name(self.means.dtype)
        where = f"in {_name(means.dtype)}, the dtype these points are evaluated in; pass {ours} points"
        bad = (~torch.isfinite(means)).any(dim=1).nonzero().flatten()
        if bad.numel():
            k = bad[0].item()
            raise ValueError(f"means[{k}] = {self.means[k].tolist()} overflows {where}")
        bad = ((lam < info.tiny) | (lam > info.max)).any(dim=1).nonzero().flatten()
        if bad.numel():
            k = bad[0].item()
            lo, hi = self.lam[k].min().item(), self.lam[k].max().item()
            v = lo if lam[k].min() < info.tiny else hi
            raise ValueError(
                f"covs[{k}] has a variance of {v:.3g}, outside the normal range [{info.tiny:.3g}, {info.max:.3g}] {where}"
            )

    # ----------------------------------------------------------------------------------------------
    # Input handling
    def _points(self, z: Any) -> tuple[torch.Tensor, tuple[int, ...], torch.dtype]:
        """``z`` as ``(N, d)`` points in the working dtype, its shape and its dtype (that of the result).

        Half-precision points (float16, bfloat16) are evaluated in float32: the squared distances of
        the log densities overflow float16 a few hundred units from a mode.
        """
        if not torch.is_tensor(z):
            z = torch.as_tensor(np.asarray(z))
        if not z.is_floating_point():
            z = z.to(self.means.dtype)
        if z.ndim == 0 or z.shape[-1] != self.dim:
            raise ValueError(
                f"points must have shape (..., {self.dim}) for this {self.dim}-D mixture, got {tuple(z.shape)}"
            )
        return z.reshape(-1, self.dim).to(torch.promote_types(z.dtype, torch.float32)), z.shape, z.dtype

    @staticmethod
    def _time(t: Any) -> Any:
        value = float(t.detach()) if torch.is_tensor(t) else float(t)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"t must lie in [0, 1] (0 = data, 1 = noise), got {value!r}")
        return t if torch.is_tensor(t) and t.requires_grad else value

    # ----------------------------------------------------------------------------------------------
    # Densities and sampling
    def marginal(self, t: Any) -> GaussianMixture:
        """The law of ``z_t = (1 - t) x0 + t eps``: means ``a mu_k``, covariances ``a^2 S_k + t^2 I``.

        Differentiable in ``t`` when ``t`` is a tensor that requires grad.
        """
        t = self._time(t)
        a = 1 - t
        return GaussianMixture.from_eigen(a * self.means, a * a * self.lam + t * t, self.U, self.log_weights)

    def _component_log_probs(self, x: torch.Tensor, means, lam, U, log_w) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-component ``log w_k + log N(x; m_k, U_k diag(lam_k) U_k^T)`` (N, K) and ``y = U_k^T (x - m_k)`` (N, K, d)."""
        y = x[:, None, :] - means  # (N, K, d)
        if U is not None:
            y = torch.einsum("nkd,kde->nke", y, U)
        log_det = torch.log(lam).sum(-1)  # (K,)
        maha = (y * y / lam).sum(-1)  # (N, K)
        return log_w - 0.5 * (maha + log_det + self.dim * _LOG_2PI), y

    def log_prob(self, x: Any) -> torch.Tensor:
        """``log p(x)`` of the mixture, shape ``x.shape[:-1]``."""
        x, shape, dtype = self._points(x)
        logits, _ = self._component_log_probs(x, *self._params(x))
        return torch.logsumexp(logits, dim=-1).to(dtype).reshape(shape[:-1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` independent draws, shape ``(n, d)``; all randomness from ``generator``.

        ``n`` is at most the bound of :class:`flowtoy.Settings`'s ``n`` (two million).
        """
        n = check_int(n, "n", 0, int(setting("n").high), setting("n").why)
        check_generator(generator)
        device = generator.device if generator is not None else self.means.device
        means, lam, U, log_w = (
            p if p is None else p.to(device) for p in (self.means, self.lam, self.U, self.log_weights)
        )
        k = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator) if n else log_w.new_zeros(0).long()
        eps = torch.randn((n, self.dim), generator=generator, dtype=means.dtype, device=device)
        y = eps * lam[k].sqrt()  # (n, d) in each point's eigenbasis
        if U is not None:  # rotate each component's points by its U_k (no (n, d, d) tensor)
            for j in range(self.n_components):
                rows = (k == j).nonzero().flatten()
                y[rows] = y[rows] @ U[j].T
        return means[k] + y

    # ----------------------------------------------------------------------------------------------
    # Posterior expectations along the path
    def _posterior(self, z: Any, t: Any, kind: str, *, reference: bool = False) -> torch.Tensor:
        """``sum_k r_k U_k (h_k * y_k) + sum_k r_k c_k`` where ``(h, c)`` depend on ``kind``.

        Uses the chunked kernels unless autograd needs the graph (``z`` or ``t`` requires grad) or
        ``reference=True``, in which case the plain formula below is evaluated.
        """
        t = self._time(t)
        z, shape, dtype = self._points(z)
        mu, lam, U, log_w = self._params(z)
        a = 1 - t
        s = a * a * lam + t * t  # (K, d): eigenvalues of Sigma_k(t)
        c = None
        if kind == "velocity":
            h, c = (t - a * lam) / s, -mu
        elif kind == "denoise":
            h, c = a * lam / s, mu
        elif kind == "noise":
            h = t / s
        else:  # score
            h = -1 / s
        differentiable = torch.is_tensor(t) or (torch.is_grad_enabled() and z.requires_grad)
        if not (reference or differentiable):
            # the two-mode kernel beats the plain formula at any batch size (2-5x from 1 to 4000 points)
            if kind == "velocity" and self._shared_diagonal and self.n_components == 2 and self.dim <= 8:
                return two_mode_velocity(z, mu, lam[0], log_w, t).to(dtype).reshape(shape)
            if z.shape[0] * self.n_components >= _SMALL_BATCH:  # below, the plain formula has less overhead
                return posterior_sum(z, a * mu, s, U, log_w, h, c).to(dtype).reshape(shape)
        logits, y = self._component_log_probs(z, a * mu, s, U, log_w)
        r = torch.softmax(logits, dim=-1)  # (N, K)
        hy = h * y  # (N, K, d)
        if U is not None:
            hy = torch.einsum("kde,nke->nkd", U, hy)
        out = torch.einsum("nk,nkd->nd", r, hy)
        if c is not None:
            out = out + r @ c
        return out.to(dtype).reshape(shape)

    def denoise(self, z: Any, t: Any) -> torch.Tensor:
        """``E[x0 | z_t = z]``, shape of ``z``."""
        return self._posterior(z, t, "denoise")

    def expected_noise(self, z: Any, t: Any) -> torch.Tensor:
        """``E[eps | z_t = z]``, shape of ``z``."""
        return self._posterior(z, t, "noise")

    def score(self, z: Any, t: Any) -> torch.Tensor:
        """``grad_z log p_t(z)``, shape of ``z``; finite at ``t = 0`` (the data score) and ``t = 1`` (``-z``)."""
        return self._posterior(z, t, "score")

    def velocity(self, z: Any, t: Any) -> torch.Tensor:
        """The rectified-flow velocity ``v(z, t) = E[eps - x0 | z_t = z]``, shape of ``z``.

        Exact and batched; ``dz/dt = v`` carries ``p_t`` to ``p_s`` for any ``s``. Equals
        ``(z - E[x0|z]) / t = (E[eps|z] - z) / (1 - t) = -(z + t score) / (1 - t)`` where defined.
        Differentiable in ``z`` and ``t`` (pass ``t`` as a tensor that requires grad).
        """
        return self._posterior(z, t, "velocity")

    __call__ = velocity


def check_mixture(mixture: Any, name: str) -> GaussianMixture:
    """A :class:`GaussianMixture` (such as ``flowtoy.paper.source()``), else ``TypeError`` naming ``name``."""
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"{name} must be a flowtoy.GaussianMixture (e.g. flowtoy.paper.{name}()), got {short(mixture)}")
    return mixture
