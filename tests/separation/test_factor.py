"""The closed-form factorisations: exact at full rank, optimal (Eckart-Young) below it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sepconv.separation.factor import (
    depthwise_factors,
    depthwise_rank_limit,
    grouped_factors,
    spatial_factors,
    spatial_rank_limit,
)


def depthwise_kernel(f, n: int, m: int, d: int) -> torch.Tensor:
    """W_hat[n, m] = sum_j pw[n, m*d + j] * dw[m*d + j], rebuilt from the factors."""
    pw = f.pw.reshape(n, m, d)
    dw = f.dw.reshape(m, d, *f.dw.shape[-2:])
    return torch.einsum("nmj,mjab->nmab", pw, dw)


def spatial_kernel(f) -> torch.Tensor:
    """W_hat[n, m, i, j] = sum_r vertical[r, m, i] * horizontal[n, r, j]."""
    return torch.einsum("rmi,nrj->nmij", f.vertical[..., 0], f.horizontal[:, :, 0])


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (4, 6, 5, 5), (12, 3, 3, 5)])
def test_depthwise_tail_energy_is_the_svd_tail(shape):
    w = torch.randn(shape, dtype=torch.float64)
    n, m, kh, kw = shape
    singular = torch.linalg.svdvals(w.permute(1, 0, 2, 3).reshape(m, n, kh * kw))  # (M, min(N, k^2))
    for d in range(1, depthwise_rank_limit(w) + 1):
        f = depthwise_factors(w, d)
        error2 = float(((w - depthwise_kernel(f, n, m, d)) ** 2).sum())
        tail = float((singular[:, d:] ** 2).sum())
        assert error2 == pytest.approx(tail, rel=1e-9, abs=1e-9)
        assert f.tail_energy == pytest.approx(tail, rel=1e-9, abs=1e-9)
    assert f.tail_energy == pytest.approx(0.0, abs=1e-9)  # d = min(N, k^2): exact


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (4, 6, 5, 5), (2, 3, 3, 3)])
def test_spatial_tail_energy_is_the_svd_tail(shape):
    w = torch.randn(shape, dtype=torch.float64)
    n, m, kh, kw = shape
    singular = torch.linalg.svdvals(w.permute(1, 2, 0, 3).reshape(m * kh, n * kw))
    for r in range(1, spatial_rank_limit(w) + 1):
        f = spatial_factors(w, r)
        error2 = float(((w - spatial_kernel(f)) ** 2).sum())
        assert error2 == pytest.approx(float((singular[r:] ** 2).sum()), rel=1e-9, abs=1e-9)
        assert f.tail_energy == pytest.approx(error2, rel=1e-9, abs=1e-9)
    assert float((w - spatial_kernel(f)).abs().max()) < 1e-10


def test_rank_one_kernel_needs_rank_one():
    """Sobel = column (1, 2, 1) x row (-1, 0, 1): rank 1 in both factorisations."""
    sobel = torch.outer(torch.tensor([1.0, 2.0, 1.0]), torch.tensor([-1.0, 0.0, 1.0])).double()
    w = sobel.expand(1, 1, 3, 3).contiguous()
    assert spatial_factors(w, 1).tail_energy == pytest.approx(0.0, abs=1e-12)
    assert float((spatial_kernel(spatial_factors(w, 1)) - w).abs().max()) < 1e-12
    assert depthwise_factors(w, 1).tail_energy == pytest.approx(0.0, abs=1e-12)


def test_factor_ranges_are_checked():
    w = torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"depth_multiplier=5 must be in 1..4 = min\(N=4, kh\*kw=9\)"):
        depthwise_factors(w, 5)
    with pytest.raises(ValueError, match=r"rank=7 must be in 1..6"):
        spatial_factors(w, 7)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        grouped_factors(w, 3)


def block_energy(f, w: torch.Tensor, groups: int) -> float:
    """Energy the grouped weight keeps, recomputed from the permutations."""
    n, m = w.shape[:2]
    out_group = torch.empty(n, dtype=torch.long)
    in_group = torch.empty(m, dtype=torch.long)
    out_group[f.out_perm] = torch.arange(n) // (n // groups)
    in_group[f.in_perm] = torch.arange(m) // (m // groups)
    mask = out_group[:, None] == in_group[None, :]
    return float((w.double() ** 2).sum((2, 3))[mask].sum())


@pytest.mark.parametrize("shape,groups", [((16, 8, 3, 3), 2), ((16, 8, 3, 3), 4), ((12, 12, 1, 1), 3), ((8, 8, 3, 3), 8)])
def test_grouped_keeps_at_least_the_identity_energy(shape, groups):
    for seed in range(3):
        w = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) ** 3  # heavy-tailed energies
        f = grouped_factors(w, groups)
        assert f.kept_energy >= f.identity_energy - 1e-9
        assert block_energy(f, w, groups) == pytest.approx(f.kept_energy, rel=1e-9)
        assert float((f.weight.double() ** 2).sum()) == pytest.approx(f.kept_energy, rel=1e-6)
        assert sorted(f.in_perm.tolist()) == list(range(shape[1]))
        assert sorted(f.out_perm.tolist()) == list(range(shape[0]))


def test_grouped_recovers_a_hidden_block_structure():
    """A block-diagonal conv with shuffled channels is found again: all energy kept, output exact."""
    groups, n, m = 4, 16, 8
    blocks = torch.zeros(n, m, 3, 3, dtype=torch.float64)
    for g in range(groups):
        blocks[g * 4:(g + 1) * 4, g * 2:(g + 1) * 2] = torch.randn(4, 2, 3, 3, dtype=torch.float64) + 1
    out_shuffle, in_shuffle = torch.randperm(n), torch.randperm(m)
    w = blocks[out_shuffle][:, in_shuffle]
    f = grouped_factors(w, groups)
    assert f.kept_energy == pytest.approx(f.total_energy, rel=1e-12)
    assert f.identity_energy < 0.9 * f.total_energy
    x = torch.randn(2, m, 7, 7, dtype=torch.float64)
    z = F.conv2d(x[:, f.in_perm], f.weight, padding=1, groups=groups)
    y = torch.empty_like(z)
    y[:, f.out_perm] = z
    torch.testing.assert_close(y, F.conv2d(x, w, padding=1))
