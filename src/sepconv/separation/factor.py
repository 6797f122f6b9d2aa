"""Closed-form factorisations of a standard convolution kernel ``W`` of shape (N, M, kh, kw).

Three ways to approximate one ``k x k`` conv by cheaper ones, each computed from the trained
weights with no data (pure tensor algebra, float64 internally):

* :func:`depthwise_factors` -- depthwise ``k x k`` with depth multiplier ``d`` then pointwise 1x1.
  For each input channel m the (N, kh*kw) slice ``A_m = W[:, m]`` is replaced by its best rank-d
  approximation (truncated SVD, Eckart & Young 1936): ``A_m ~ U_d S_d V_d^T``. The depthwise
  kernels of channel m are the rows of ``sqrt(S_d) V_d^T``, the pointwise weights the columns of
  ``U_d sqrt(S_d)``. With ``d = min(N, kh*kw)`` the factorisation is exact. This is the
  depthwise-separable form of Howard et al. 2017 (*MobileNets*, Section 3.1) with Keras's
  depth multiplier; the per-channel SVD is Guo et al. 2018, *Network Decoupling*, Section 3.
* :func:`spatial_factors` -- ``kh x 1`` conv (M -> r) then ``1 x kw`` conv (r -> N): Jaderberg,
  Vedaldi & Zisserman 2014, *Speeding up Convolutional Neural Networks with Low Rank Expansions*,
  "scheme 2", solved in closed form: W reshaped to the (M*kh, N*kw) matrix
  ``B[(m, i), (n, j)] = W[n, m, i, j]`` and truncated to rank r by SVD. Exact for
  ``r >= rank(B)``, in particular ``r = min(M*kh, N*kw)``.
* :func:`grouped_factors` -- a ``G``-group conv keeping the block-diagonal part of W after
  permuting output and input channels so that the blocks hold as much of ``||W||^2`` as
  possible (Krizhevsky et al. 2012; ShuffleNet, Zhang et al. 2018). See its docstring for the
  search.

In every case ``||W - W_hat||_F^2`` is exactly the energy left out (the SVD tail, or the
off-block energy), which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DepthwiseFactors:
    """``dw``: (M*d, 1, kh, kw) depthwise kernels, output ``m*d + j``; ``pw``: (N, M*d, 1, 1)."""

    dw: torch.Tensor
    pw: torch.Tensor
    tail_energy: float  # sum of the discarded squared singular values = ||W - W_hat||_F^2


@dataclass(frozen=True)
class SpatialFactors:
    """``vertical``: (r, M, kh, 1) kernels of the ``kh x 1`` conv; ``horizontal``: (N, r, 1, kw)."""

    vertical: torch.Tensor
    horizontal: torch.Tensor
    tail_energy: float


@dataclass(frozen=True)
class GroupedFactors:
    """The grouped kernel and the channel permutations around it.

    ``in_perm[q]`` is the original input channel the grouped conv reads at position q;
    ``out_perm[p]`` the original output channel that grouped output p is. ``weight``:
    (N, M/G, kh, kw), the block of output group g reading inputs ``in_perm[g*M/G:(g+1)*M/G]``.
    """

    weight: torch.Tensor
    in_perm: torch.Tensor
    out_perm: torch.Tensor
    kept_energy: float
    identity_energy: float  # what the block diagonal keeps with no permutation, for comparison
    total_energy: float


def depthwise_rank_limit(weight: torch.Tensor) -> int:
    """Largest useful depth multiplier: ``min(N, kh*kw)``; exact there."""
    n, _, kh, kw = weight.shape
    return min(n, kh * kw)


def spatial_rank_limit(weight: torch.Tensor) -> int:
    """Largest useful rank of the spatial factorisation: ``min(M*kh, N*kw)``; exact there."""
    n, m, kh, kw = weight.shape
    return min(m * kh, n * kw)


def _in_range(name: str, value: int, limit: int, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValueError(f"{name}={value!r} must be in 1..{limit} = {rule}")
    return value


def _truncated_svd(a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(left * sqrt(s), sqrt(s) * right^T, kept s, tail energy per batch) of a (..., p, q) matrix."""
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    root = s[..., :rank].sqrt()
    left = u[..., :rank] * root.unsqueeze(-2)  # (..., p, r)
    right = root.unsqueeze(-1) * vh[..., :rank, :]  # (..., r, q)
    tail = (s[..., rank:] ** 2).sum(-1)
    return left, right, s[..., :rank], tail


def depthwise_factors(weight: torch.Tensor, depth_multiplier: int) -> DepthwiseFactors:
    """Best depthwise(d) + pointwise approximation of ``weight`` in the Frobenius norm.

    Example::

        >>> f = depthwise_factors(torch.randn(16, 8, 3, 3), 2)
        >>> f.dw.shape, f.pw.shape
        (torch.Size([16, 1, 3, 3]), torch.Size([16, 16, 1, 1]))
    """
    n, m, kh, kw = weight.shape
    d = _in_range("depth_multiplier", depth_multiplier, depthwise_rank_limit(weight), f"min(N={n}, kh*kw={kh * kw})")
    a = weight.detach().double().permute(1, 0, 2, 3).reshape(m, n, kh * kw)  # A_m: (M, N, k^2)
    left, right, _, tail = _truncated_svd(a, d)  # (M, N, d), (M, d, k^2)
    dw = right.reshape(m * d, 1, kh, kw)  # output m*d + j = j-th kernel of input m
    pw = left.permute(1, 0, 2).reshape(n, m * d, 1, 1)  # P[n, m*d + j]
    return DepthwiseFactors(dw.to(weight.dtype), pw.to(weight.dtype), float(tail.sum()))


def spatial_factors(weight: torch.Tensor, rank: int) -> SpatialFactors:
    """Best ``kh x 1`` (M -> r) then ``1 x kw`` (r -> N) approximation (Jaderberg et al. 2014, scheme 2).

    Example::

        >>> f = spatial_factors(torch.randn(16, 8, 3, 3), 4)
        >>> f.vertical.shape, f.horizontal.shape
        (torch.Size([4, 8, 3, 1]), torch.Size([16, 4, 1, 3]))
    """
    n, m, kh, kw = weight.shape
    _in_range("rank", rank, spatial_rank_limit(weight), f"min(M*kh={m * kh}, N*kw={n * kw})")
    b = weight.detach().double().permute(1, 2, 0, 3).reshape(m * kh, n * kw)  # B[(m, i), (n, j)]
    left, right, _, tail = _truncated_svd(b, rank)  # (M*kh, r), (r, N*kw)
    vertical = left.T.reshape(rank, m, kh, 1)
    horizontal = right.reshape(rank, n, 1, kw).permute(1, 0, 2, 3)
    return SpatialFactors(vertical.to(weight.dtype).contiguous(), horizontal.to(weight.dtype).contiguous(), float(tail))


def _block_energy(energy: torch.Tensor, out_group: torch.Tensor, in_group: torch.Tensor) -> float:
    return float(energy[out_group.unsqueeze(1) == in_group.unsqueeze(0)].sum())


def _balanced_assign(score: torch.Tensor, groups: int) -> torch.Tensor:
    """Give each row a group, ``rows/groups`` rows per group, maximising the summed ``score[row, group]``.

    An exact balanced assignment: the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``)
    on the score matrix with each group's column repeated ``rows/groups`` times.
    """
    from scipy.optimize import linear_sum_assignment

    rows = score.shape[0]
    slots = score.repeat_interleave(rows // groups, dim=1)  # (rows, rows): column g*size + t
    _, cols = linear_sum_assignment(slots.numpy(), maximize=True)
    return torch.as_tensor(cols, dtype=torch.long) // (rows // groups)


def _refine(energy: torch.Tensor, groups: int, out_group: torch.Tensor, in_group: torch.Tensor,
            max_rounds: int = 50) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Alternate exact balanced assignments of outputs (inputs fixed) and inputs (outputs fixed).

    Each half-step maximises the kept energy over one side exactly, so the energy never falls
    below the starting grouping's.
    """
    best = _block_energy(energy, out_group, in_group)
    one_hot = torch.eye(groups, dtype=energy.dtype)
    for _ in range(max_rounds):
        out_group = _balanced_assign(energy @ one_hot[in_group], groups)  # (N, G) energy per group
        in_group = _balanced_assign(energy.T @ one_hot[out_group], groups)  # (M, G)
        kept = _block_energy(energy, out_group, in_group)
        if kept <= best * (1 + 1e-12):
            best = max(best, kept)
            break
        best = kept
    return out_group, in_group, best


def _spectral_seed(energy: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced co-clustering seed (Dhillon 2001, *Co-clustering documents and words using
    bipartite spectral graph partitioning*): sort rows and columns by the second singular vectors
    of ``D_r^-1/2 E D_c^-1/2`` and cut each ordering into equal consecutive groups."""
    eps = energy.sum() * 1e-12 + 1e-300
    dr = (energy.sum(1) + eps).rsqrt()
    dc = (energy.sum(0) + eps).rsqrt()
    u, _, vh = torch.linalg.svd(dr[:, None] * energy * dc[None, :], full_matrices=False)
    if u.shape[1] < 2:
        n, m = energy.shape
        return torch.arange(n) // (n // groups), torch.arange(m) // (m // groups)
    out_order = torch.argsort(dr * u[:, 1], stable=True)
    in_order = torch.argsort(dc * vh[1], stable=True)
    out_group = torch.empty_like(out_order)
    in_group = torch.empty_like(in_order)
    out_group[out_order] = torch.arange(len(out_order)) // (len(out_order) // groups)
    in_group[in_order] = torch.arange(len(in_order)) // (len(in_order) // groups)
    return out_group, in_group


def grouped_factors(weight: torch.Tensor, groups: int) -> GroupedFactors:
    """Block-diagonal ``groups``-group approximation of ``weight`` under the best channel permutations found.

    Method: with ``E[n, m] = ||W[n, m]||^2``, choose a balanced output grouping g(n) and input
    grouping h(m) maximising the kept energy ``sum E[n, m] over g(n) = h(m)``. Two starts -- the
    identity grouping (consecutive channels) and a spectral co-clustering seed (Dhillon 2001) --
    are each refined by alternating exact balanced assignments (Hungarian algorithm); the better
    result is kept. Refinement never loses energy, so the result keeps at least as much as the
    identity permutation, which :attr:`GroupedFactors.identity_energy` reports.

    Example::

        >>> f = grouped_factors(torch.randn(16, 8, 3, 3), 4)
        >>> f.weight.shape, f.kept_energy >= f.identity_energy
        (torch.Size([16, 2, 3, 3]), True)
    """
    n, m, kh, kw = weight.shape
    if groups < 1 or n % groups or m % groups:
        raise ValueError(f"groups={groups} must divide both in_channels={m} and out_channels={n}")
    w = weight.detach().double()
    energy = (w**2).sum((2, 3))  # (N, M)
    identity = (torch.arange(n) // (n // groups), torch.arange(m) // (m // groups))
    identity_energy = _block_energy(energy, *identity)
    candidates = [_refine(energy, groups, *identity)]
    if groups > 1:
        candidates.append(_refine(energy, groups, *_spectral_seed(energy, groups)))
    out_group, in_group, kept = max(candidates, key=lambda c: c[2])
    out_perm = torch.argsort(out_group, stable=True)  # output channels of group 0, then 1, ...
    in_perm = torch.argsort(in_group, stable=True)
    n_g, m_g = n // groups, m // groups
    blocks = [w[out_perm[g * n_g:(g + 1) * n_g]][:, in_perm[g * m_g:(g + 1) * m_g]] for g in range(groups)]
    grouped = torch.cat(blocks, 0)  # (N, M/G, kh, kw) in out_perm order
    return GroupedFactors(grouped.to(weight.dtype), in_perm, out_perm, kept, identity_energy, float(energy.sum()))
