"""Fast exact evaluation of mixture posterior sums, for large batches of points.

Everything here computes, for points ``z`` (N, d),

    out(z) = sum_k r_k(z) U_k (h_k * y_k) + sum_k r_k(z) c_k,    y_k = U_k^T (z - m_k),

with ``r = softmax_k(log w_k + log N(z; m_k, U_k diag(s_k) U_k^T))``: the same sum as
``GaussianMixture._posterior`` (the plain reference, which autograd can differentiate), laid out
for speed. The points are processed in chunks that fit in cache, feature-major (``(rows, n)``
with long contiguous rows), so each step is one small matrix product or one vectorised pass.
"""

from __future__ import annotations

import torch

_WORKING_SET_BYTES = 1 << 22  # per chunk; ~4 MB stays in a 2-core machine's cache


def _chunk_rows(K: int, d: int, itemsize: int) -> int:
    rows = _WORKING_SET_BYTES // (itemsize * (K * (d + 1) + d + 1))
    return max(1024, min(65536, 1 << max(rows.bit_length() - 1, 0)))


def posterior_sum(
    z: torch.Tensor,
    m: torch.Tensor,
    s: torch.Tensor,
    U: torch.Tensor | None,
    log_w: torch.Tensor,
    h: torch.Tensor,
    c: torch.Tensor | None,
) -> torch.Tensor:
    """``sum_k r_k U_k (h_k * y_k) + sum_k r_k c_k`` for ``z`` (N, d); ``m, s, h, c`` are (K, d), ``U`` (K, d, d) or None."""
    N, d = z.shape
    K = m.shape[0]
    sig = s.sqrt()
    hs = h * sig  # (K, d): out = sum_k r_k U_k (hs_k * Y_k) + ..., Y_k = y_k / sig_k whitened
    log_norm = (log_w - torch.log(sig).sum(-1))[:, None]  # (K, 1)
    rows = _chunk_rows(K, d, z.element_size())
    out = torch.empty_like(z)
    if U is None:
        # Axis-aligned: Y_k = (z - m_k) / sig_k elementwise, O(K d) per point.
        m_col, sig_col, hs_col = m[:, :, None], sig[:, :, None], hs[:, :, None]  # (K, d, 1)
        for start in range(0, N, rows):
            zT = z[start : start + rows].T.contiguous()  # (d, n)
            Y = (zT - m_col).div_(sig_col)  # (K, d, n)
            r = torch.softmax(torch.sub(log_norm, Y.square().sum(1), alpha=0.5), dim=0)  # (K, n)
            acc = (Y.mul_(hs_col).mul_(r[:, None, :])).sum(0)  # (d, n)
            if c is not None:
                acc.addmm_(c.T, r)
            out[start : start + rows].copy_(acc.T)
        return out
    # Rotated: Y_k = A_k (z - m_k), A_k = diag(1 / sig_k) U_k^T, as one product with [z; 1].
    A = U.transpose(1, 2) / sig[:, :, None]  # (K, d, d)
    A_aug = torch.cat([A.reshape(K * d, d), -(A @ m[:, :, None]).reshape(K * d, 1)], dim=1)  # (K*d, d+1)
    # log r_k up to a constant: log w_k - sum log sig_k - |Y_k|^2 / 2, as a product with Y*Y.
    half_sums = torch.block_diag(*[torch.full((1, d), -0.5, dtype=z.dtype, device=z.device)] * K)  # (K, K*d)
    # Output: sum_k G_k (r_k Y_k) + sum_k c_k r_k with G_k = U_k diag(hs_k): one product.
    G = U * hs[:, None, :]  # (K, d, d)
    G_full = G.permute(1, 0, 2).reshape(d, K * d)  # G_full[:, k*d + e] = G_k[:, e]
    if c is not None:
        G_full = torch.cat([G_full, c.T], dim=1)  # (d, K*d + K)
    z_aug = torch.ones(d + 1, min(rows, N), dtype=z.dtype, device=z.device)
    work = torch.empty(G_full.shape[1], min(rows, N), dtype=z.dtype, device=z.device)
    for start in range(0, N, rows):
        n = min(rows, N - start)
        za = z_aug[:, :n]
        za[:d].copy_(z[start : start + n].T)
        Y = A_aug @ za  # (K*d, n)
        r = torch.softmax(torch.addmm(log_norm, half_sums, Y * Y), dim=0)  # (K, n)
        w = work[:, :n]
        torch.mul(Y.view(K, d, n), r[:, None, :], out=w[: K * d].view(K, d, n))
        if c is not None:
            w[K * d :].copy_(r)
        out[start : start + n].copy_((G_full @ w).T)
    return out


def two_mode_velocity(
    z: torch.Tensor, mu: torch.Tensor, lam: torch.Tensor, log_w: torch.Tensor, t: float
) -> torch.Tensor:
    """Velocity of a 2-component mixture whose components share one diagonal covariance ``diag(lam)``.

    Then ``s = a^2 lam + t^2`` and ``c = (t - a lam) / s`` do not depend on ``k``, the quadratic terms
    cancel in the responsibilities, and with ``m_k = a mu_k``, ``B_k = c m_k + mu_k``:

        r_1 = sigmoid(z.(m_1 - m_0)/s + log(w_1/w_0) - (|m_1|^2 - |m_0|^2)/(2 s)),
        v   = c z - B_0 - r_1 (B_1 - B_0),

    computed column by column: a handful of vectorised passes over the points.
    """
    a = 1 - t
    s = a * a * lam + t * t  # (d,)
    c = (t - a * lam) / s  # (d,)
    m = a * mu  # (2, d)
    B = c * m + mu  # (2, d)
    w = (m[1] - m[0]) / s
    bias = (log_w[1] - log_w[0] - 0.5 * ((m[1] * m[1] - m[0] * m[0]) / s).sum()).item()
    r1 = torch.mv(z, w).add_(bias).sigmoid_()
    out = torch.empty_like(z)
    dB = (B[1] - B[0]).tolist()
    for j, (cj, b0j) in enumerate(zip(c.tolist(), B[0].tolist(), strict=True)):
        col = out[:, j]
        torch.mul(z[:, j], cj, out=col)
        col.add_(r1, alpha=-dB[j]).sub_(b0j)
    return out
