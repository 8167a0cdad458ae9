"""Tests of ``cebra_pipe.data.neighbors.NearestNeighbors`` against brute force."""

from __future__ import annotations

import math

import pytest
import torch

from cebra_pipe.data import neighbors
from cebra_pipe.data.neighbors import NearestNeighbors, _unique_rows, choose_structure


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _brute_force_min(points: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared distance from each target to its nearest point, float64."""
    points, targets = points.double(), targets.double()
    if points.dim() == 1:
        points, targets = points[:, None], targets[:, None]
    # no matrix-multiplication shortcut: that one loses ~1e-11 to cancellation
    dist = torch.cdist(targets, points, compute_mode="donot_use_mm_for_euclid_dist")
    return dist.min(1).values ** 2


def _assert_exact(points: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                  atol: float = 0.0) -> None:
    """``rows`` index points at the minimal distance (exactly, for float64 inputs)."""
    assert rows.shape == (len(targets),)
    assert rows.dtype == torch.long
    assert int(rows.min()) >= 0 and int(rows.max()) < len(points)
    p = points.double() if points.dim() == 2 else points.double()[:, None]
    t = targets.double() if targets.dim() == 2 else targets.double()[:, None]
    chosen = ((p[rows] - t) ** 2).sum(1)
    best = _brute_force_min(points, targets)
    # 1e-12 relative: only a float64 rounding difference, i.e. an exact tie, passes
    bad = chosen > best * (1 + 1e-12) + atol
    assert not bad.any(), (f"{int(bad.sum())} of {len(rows)} queries not nearest; e.g. target "
                           f"{t[bad][0].tolist()} got {float(chosen[bad][0])} vs "
                           f"{float(best[bad][0])}")


def _random_walk(n: int, d: int, seed: int) -> torch.Tensor:
    gen = _gen(seed)
    steps = torch.randn(n, d, generator=gen, dtype=torch.float64) * 0.05
    return torch.cumsum(steps, 0)


def _targets_like(points: torch.Tensor, num: int, seed: int) -> torch.Tensor:
    """Data-like targets (point + an observed change), jittered ones and far-away ones."""
    gen = _gen(seed)
    n = len(points)
    i = torch.randint(0, n - 5, (num,), generator=gen)
    j = torch.randint(0, n - 5, (num,), generator=gen)
    delta_targets = points[i] + (points[j + 5] - points[j])
    span = float((points.max(0).values - points.min(0).values).max())
    jitter = points[i] + 0.3 * span * torch.randn(points[i].shape, generator=gen,
                                                  dtype=points.dtype)
    far = points.mean(0) + 1e3 * span * torch.randn(points[:50].shape, generator=gen,
                                                    dtype=points.dtype)
    return torch.cat([delta_targets, jitter, far, points[i[:100]]])


def _force(monkeypatch, structure: str) -> None:
    """Make multi-dimensional continuous labels use ``structure`` on the CPU."""
    monkeypatch.setattr(neighbors, "choose_structure",
                        lambda dim, device: "sorted" if dim == 1 else structure)


@pytest.fixture(params=["kdtree", "blocked"])
def structure(request, monkeypatch) -> str:
    """Each multi-dimensional search; ``blocked`` is the accelerators' one, run on the CPU."""
    _force(monkeypatch, request.param)
    return request.param


def _brute_force_unique(unique: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per target, the first row of ``unique`` at the smallest float64 distance.

    ``unique`` is sorted lexicographically, so this is the documented tie rule.
    """
    found = []
    for block in targets.double().split(64):
        dist = ((unique.double()[None] - block[:, None]) ** 2).sum(-1)
        found.append((dist == dist.min(1, keepdim=True).values).int().argmax(1))
    return torch.cat(found)


def test_1d_exact():
    gen = _gen(1)
    points = torch.cat([torch.rand(3000, generator=gen, dtype=torch.float64),
                        torch.randn(1000, generator=gen, dtype=torch.float64) * 5])
    points = torch.round(points * 200) / 200  # duplicates
    targets = torch.cat([torch.randn(4000, generator=gen, dtype=torch.float64) * 3,
                         torch.tensor([-1e9, 1e9, -50.0, 50.0], dtype=torch.float64),
                         points[:100]])
    index = NearestNeighbors(points, _gen(2))
    rows = index.query(targets)
    _assert_exact(points, targets, rows)
    # (n, 1) input and (b, 1) queries behave the same
    index2 = NearestNeighbors(points[:, None], _gen(2))
    _assert_exact(points, targets, index2.query(targets[:, None]))
    # far targets take the extreme points
    assert float(points[rows[-104]]) == float(points.min())
    assert float(points[rows[-103]]) == float(points.max())


def test_1d_single_value_and_two_values():
    points = torch.full((10,), 3.0, dtype=torch.float64)
    rows = NearestNeighbors(points, _gen()).query(torch.tensor([-5.0, 3.0, 100.0],
                                                               dtype=torch.float64))
    assert rows.shape == (3,)
    points = torch.tensor([0.0, 1.0], dtype=torch.float64)
    index = NearestNeighbors(points, _gen())
    targets = torch.tensor([-1.0, 0.2, 0.8, 2.0], dtype=torch.float64)
    assert index.query(targets).tolist() == [0, 0, 1, 1]


def test_3d_position_and_binary_direction_columns():
    # [position, right, left] like the rat hippocampus labels: continuous + one-hot.
    gen = _gen(7)
    n = 5000
    t = torch.arange(n, dtype=torch.float64)
    position = 0.8 + 0.8 * torch.sin(2 * math.pi * t / 700)
    position = torch.round(position * 500) / 500  # quantised like a tracker
    velocity = torch.diff(position, prepend=position[:1])
    right = (velocity > 0).double()
    left = (velocity < 0).double()
    points = torch.stack([position, right, left], 1)
    index = NearestNeighbors(points, _gen(0))
    i = torch.randint(0, n - 10, (2000,), generator=gen)
    j = torch.randint(0, n - 10, (2000,), generator=gen)
    targets = torch.cat([points[i] + points[j + 10] - points[j],  # right/left in {-1..2}
                         points[i] + 0.05 * torch.randn(2000, 3, generator=gen,
                                                        dtype=torch.float64),
                         torch.tensor([[50.0, 1.0, 0.0], [-50.0, 0.0, 1.0],
                                       [0.8, 5.0, 5.0], [0.8, -3.0, 0.0]],
                                      dtype=torch.float64)])
    rows = index.query(targets)
    _assert_exact(points, targets, rows)
    # targets equal to a label get a row with exactly that label
    same = index.query(points[i])
    assert torch.equal(points[same], points[i])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [2, 3, 5, 8, 13, 20])
def test_multidimensional_search_equals_brute_force(structure, d, dtype):
    points = _random_walk(3000, d, seed=d).to(dtype)
    index = NearestNeighbors(points, _gen(0))
    assert index.structure == structure
    targets = _targets_like(points.double(), 400, seed=10 + d).to(dtype)
    # float32 labels and targets too: distances are re-checked in float64, so the
    # answer is the exact nearest of the float32 values, not one up to rounding
    assert torch.equal(index._nearest_unique(targets), _brute_force_unique(index.unique, targets))
    _assert_exact(points, targets, index.query(targets))


@pytest.mark.parametrize("d", [2, 5, 12])
def test_multidimensional_search_clustered_offset_and_far_targets(structure, d):
    # dense clusters far apart, far from the origin (float32 keeps ~1e-3 there):
    # midpoints between clusters and targets far outside the data
    gen = _gen(d)
    centres = 1e4 + torch.randn(4, d, generator=gen, dtype=torch.float64) * 100
    points = torch.cat([c + 0.01 * torch.randn(700, d, generator=gen, dtype=torch.float64)
                        for c in centres]).float()
    index = NearestNeighbors(points, _gen(0))
    assert index.structure == structure
    midpoints = torch.stack([(centres[a] + centres[b]) / 2 for a in range(4)
                             for b in range(4)])
    targets = torch.cat([_targets_like(points.double(), 300, seed=d), midpoints,
                         midpoints + torch.randn(midpoints.shape, generator=gen,
                                                 dtype=torch.float64)]).float()
    assert torch.equal(index._nearest_unique(targets), _brute_force_unique(index.unique, targets))
    _assert_exact(points, targets, index.query(targets))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [2, 3, 4])
def test_equidistant_labels_give_the_lowest_label(structure, d, dtype):
    # an integer lattice (shuffled, some rows repeated) and half-integer targets: up
    # to 2^d distinct labels at exactly the same distance
    gen = _gen(d)
    side = {2: 60, 3: 15, 4: 8}[d]
    lattice = torch.cartesian_prod(*[torch.arange(side)] * d).to(dtype)
    lattice = lattice[torch.randperm(len(lattice), generator=gen)]
    points = torch.cat([lattice, lattice[:300]])
    index = NearestNeighbors(points, _gen(1))
    assert index.structure == structure
    targets = (torch.randint(-1, side + 1, (800, d), generator=gen)
               + 0.5 * torch.randint(0, 2, (800, d), generator=gen)).to(dtype)
    found = index._nearest_unique(targets)
    assert torch.equal(found, _brute_force_unique(index.unique, targets))
    _assert_exact(points, targets, index.query(targets))
    centre = torch.full((1, d), 0.5, dtype=dtype)  # 2^d corners: the zero corner wins
    assert index.unique[index._nearest_unique(centre)].tolist() == [[0.0] * d]


def test_blocked_search_exact_below_the_float32_product_rounding(monkeypatch):
    # pairs of labels 2e-4 apart, targets between them: the two squared distances
    # differ by far less than the rounding of float32 matrix products (~1e-7),
    # which alone would pick the wrong one of the pair about half the time
    _force(monkeypatch, "blocked")
    gen = _gen(12)
    base = torch.rand(1500, 8, generator=gen)
    twins = base + 2e-4 * torch.randn(1500, 8, generator=gen)
    points = torch.cat([base, twins])
    targets = (base[:500] + twins[:500]) / 2 + 3e-5 * torch.randn(500, 8, generator=gen)
    index = NearestNeighbors(points, _gen(0))
    by_product = ((targets ** 2).sum(1)[:, None] - 2 * targets @ index.unique.T
                  + (index.unique ** 2).sum(1))
    expected = _brute_force_unique(index.unique, targets)
    assert (by_product.argmin(1) != expected).any()
    assert torch.equal(index._nearest_unique(targets), expected)


@pytest.mark.parametrize("precision", ["highest", "medium"])
def test_blocked_search_exact_under_autocast_and_low_matmul_precision(monkeypatch, precision):
    _force(monkeypatch, "blocked")
    points = _random_walk(2000, 6, seed=6).float()
    index = NearestNeighbors(points, _gen(0))
    targets = _targets_like(points.double(), 300, seed=7).float()
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            found = index._nearest_unique(targets)
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch.equal(found, _brute_force_unique(index.unique, targets))


def test_structure_chosen_by_dimension_and_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_structure(1, cpu) == choose_structure(1, cuda) == "sorted"
    assert choose_structure(2, cpu) == choose_structure(20, cpu) == "kdtree"
    assert choose_structure(2, cuda) == choose_structure(20, cuda) == "blocked"
    walk = _random_walk(3000, 8, seed=1)
    assert NearestNeighbors(walk[:, 0], _gen()).structure == "sorted"
    assert NearestNeighbors(walk, _gen()).structure == "kdtree"
    assert NearestNeighbors(walk[:5], _gen()).structure == "kdtree"
    right = (torch.arange(3000)[:, None] % 2).double()
    grouped = NearestNeighbors(torch.cat([walk[:, :2], right, 1 - right], 1), _gen())
    assert grouped.structure == "groups"
    assert {sub.structure for _, sub in grouped.groups} == {"kdtree"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_labels_search_on_the_device():
    points = _random_walk(20000, 8, seed=8).float()
    targets = _targets_like(points.double(), 400, seed=9).float()
    on_cpu = NearestNeighbors(points, _gen(0))
    on_gpu = NearestNeighbors(points.cuda(), torch.Generator("cuda").manual_seed(0))
    assert on_gpu.structure == "blocked"
    found = on_gpu._nearest_unique(targets.cuda())
    assert found.device.type == "cuda"
    assert torch.equal(found.cpu(), on_cpu._nearest_unique(targets))
    assert on_gpu.query(targets.cuda()).device.type == "cuda"


def test_empty_query(structure):
    index = NearestNeighbors(_random_walk(3000, 4, seed=4), _gen(0))
    assert index.query(torch.zeros(0, 4, dtype=torch.float64)).shape == (0,)


@pytest.mark.parametrize(("d", "forced"), [(1, None), (3, "blocked"), (3, "kdtree")])
def test_ties_are_drawn_uniformly_among_identical_rows(monkeypatch, d, forced):
    # Repeated labels (an animal at rest): each value occurs at several time points.
    if forced:
        _force(monkeypatch, forced)
    gen = _gen(11)
    values = torch.randn(100, d, generator=gen, dtype=torch.float64)
    repeats = torch.randint(1, 6, (100,), generator=gen)
    points = torch.repeat_interleave(values, repeats, dim=0)
    points = points[torch.randperm(len(points), generator=gen)]
    index = NearestNeighbors(points if d > 1 else points[:, 0], _gen(3))
    # query each value many times; every row holding it must come up
    target_value = 17
    target = values[target_value:target_value + 1]
    members = set(torch.nonzero((points == target).all(1)).flatten().tolist())
    assert len(members) == int(repeats[target_value])
    draws = index.query(target.expand(400 * len(members), d).contiguous()
                        if d > 1 else target[:, 0].expand(400 * len(members)).contiguous())
    counts = torch.bincount(draws, minlength=len(points))
    assert set(torch.nonzero(counts).flatten().tolist()) == members
    # roughly uniform: each member gets 400 +- 5 sigma draws
    for m in members:
        assert abs(int(counts[m]) - 400) < 5 * math.sqrt(400), counts[list(members)]
    # every value: a query of the value returns one of its rows
    rows = index.query(points if d > 1 else points[:, 0])
    assert torch.equal(points[rows], points)


def test_large_duplicate_groups_all_reachable(structure):
    # A rest period: 500 identical rows among moving samples.
    walk = _random_walk(3000, 2, seed=5)
    rest = walk[1000].expand(500, 2)
    points = torch.cat([walk[:1000], rest, walk[1000:]])
    index = NearestNeighbors(points, _gen(1))
    draws = index.query(walk[1000].expand(20000, 2).contiguous())
    members = torch.nonzero((points == walk[1000]).all(1)).flatten()
    assert len(members) == 501
    assert set(draws.unique().tolist()) == set(members.tolist())


def test_seeded_determinism(structure):
    gen = _gen(2)
    points = torch.round(torch.randn(3000, 3, generator=gen, dtype=torch.float64) * 8) / 8
    targets = torch.randn(1000, 3, generator=gen, dtype=torch.float64) * 3
    assert NearestNeighbors(points, _gen(42)).structure == structure
    a = NearestNeighbors(points, _gen(42)).query(targets)
    b = NearestNeighbors(points, _gen(42)).query(targets)
    c = NearestNeighbors(points, _gen(43)).query(targets)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # ties among duplicated rows are drawn differently
    # both are nearest though
    _assert_exact(points, targets, a)
    _assert_exact(points, targets, c)
    torch.testing.assert_close(points[a], points[c])


@pytest.mark.parametrize("continuous_dims", [1, 2, 3])
def test_categorical_columns_with_off_lattice_targets(continuous_dims):
    # continuous columns plus a binary pair and a 5-valued column; targets leave the
    # lattice of the categorical columns (e.g. right = -1 or 2) and the data range
    gen = _gen(20 + continuous_dims)
    n = 4000
    cont = _random_walk(n, continuous_dims, seed=continuous_dims)
    right = torch.randint(0, 2, (n, 1), generator=gen).double()
    level = torch.randint(0, 5, (n, 1), generator=gen).double() * 0.7
    points = torch.cat([cont, right, 1 - right, level], 1)
    index = NearestNeighbors(points, _gen(0))
    assert index.groups  # one exact search over the continuous columns per category
    i = torch.randint(0, n - 10, (1500,), generator=gen)
    j = torch.randint(0, n - 10, (1500,), generator=gen)
    targets = torch.cat([
        points[i] + points[j + 10] - points[j],
        points[i] + torch.randn(1500, points.shape[1], generator=gen, dtype=torch.float64),
        points[i] * 50,
    ])
    _assert_exact(points, targets, index.query(targets))
    # equal targets find a row with that exact label
    assert torch.equal(points[index.query(points[i])], points[i])


def test_class_coordinate_like_the_mixed_sampler():
    # [position, class * gap]: the nearest point never leaves the target's class
    gen = _gen(30)
    n = 3000
    position = _random_walk(n, 1, seed=30)
    klass = torch.randint(0, 6, (n, 1), generator=gen).double()
    gap = 4 * (float(position.max() - position.min()) + 1)
    points = torch.cat([position, klass * gap], 1)
    index = NearestNeighbors(points, _gen(0))
    assert len(index.groups) == 6
    i = torch.randint(0, n - 5, (2000,), generator=gen)
    j = torch.randint(0, n - 5, (2000,), generator=gen)
    targets = torch.cat([points[i, :1] + position[j + 5] - position[j], points[i, 1:]], 1)
    rows = index.query(targets)
    _assert_exact(points, targets, rows)
    assert torch.equal(klass[rows], klass[i])


def test_ties_within_categorical_groups():
    # duplicated rows of a [position, right, left] recording are all drawn
    base = torch.tensor([[0.5, 1.0, 0.0], [0.5, 0.0, 1.0], [0.7, 1.0, 0.0]],
                        dtype=torch.float64)
    filler = torch.cat([torch.linspace(0, 1.6, 200, dtype=torch.float64)[:, None],
                        torch.ones(200, 1, dtype=torch.float64),
                        torch.zeros(200, 1, dtype=torch.float64)], 1)
    points = torch.cat([filler, base[[0, 1, 0, 2, 0, 1]]])
    index = NearestNeighbors(points, _gen(4))
    target = torch.tensor([[0.5, 0.9, -0.1]], dtype=torch.float64).expand(3000, 3)
    draws = index.query(target.contiguous())
    members = torch.nonzero((points == base[0]).all(1)).flatten()
    assert len(members) == 3
    assert set(draws.unique().tolist()) == set(members.tolist())


@pytest.mark.parametrize("ties", [False, True])
def test_flat_group_search_equals_the_loop_over_groups(ties):
    # one continuous column: the groups are searched in one pass, with the loop's
    # answer row for row (ties between groups included)
    gen = _gen(40 + ties)
    n = 3000
    position = _random_walk(n, 1, seed=40)
    if ties:  # a coarse grid of positions: many equal distances across groups
        position = (position * 4).round() / 4
    right = torch.randint(0, 2, (n, 1), generator=gen).double()
    klass = torch.randint(0, 7, (n, 1), generator=gen).double() * 0.3
    points = torch.cat([position, right, 1 - right, klass], 1)
    flat = NearestNeighbors(points, _gen(0))
    looped = NearestNeighbors(points, _gen(0))
    assert flat.flat is not None
    looped.flat = None
    i = torch.randint(0, n - 10, (3000,), generator=gen)
    targets = torch.cat([points[i] + points[i + 10] - points[i + 3],
                         points[i] + 0.4 * torch.randn(3000, 4, generator=gen,
                                                       dtype=torch.float64),
                         points[i] * 20])
    rows = flat._nearest_unique(targets)
    assert torch.equal(rows, looped._nearest_unique(targets))
    _assert_exact(points, targets, flat.query(targets))


def test_flat_group_search_with_huge_label_values():
    # integer rank keys: labels near float64's limits keep their order
    values = torch.cat([torch.tensor([-1e300, -1.0, 0.0, 1e-300, 2.0, 1e300],
                                     dtype=torch.float64),
                        torch.linspace(3, 100, 40, dtype=torch.float64)])
    points = torch.cat([values.repeat(2)[:, None],
                        (torch.arange(92, dtype=torch.float64) >= 46)[:, None].double()], 1)
    index = NearestNeighbors(points, _gen(0))
    assert index.flat is not None
    targets = torch.tensor([[9e299, 0.0], [8e-301, 1.0], [-3.0, 0.0], [1.5, 1.0]],
                           dtype=torch.float64)
    assert points[index.query(targets), 0].tolist() == [1e300, 1e-300, -1.0, 2.0]


@pytest.mark.parametrize("shape", [(1000, 1), (1000, 3), (5000, 5), (1, 2), (0, 3)])
def test_unique_rows_equal_torch_unique_along_rows(shape):
    gen = _gen(shape[0] + shape[1])
    scale = torch.tensor([0.5, -1.0, 2.0, 3.0, -7.5][:shape[1]], dtype=torch.float64)
    points = torch.randint(0, 4, shape, generator=gen).double() * scale
    unique, inverse = _unique_rows(points)
    expected, expected_inverse = torch.unique(points, dim=0, return_inverse=True)
    assert torch.equal(unique, expected)
    assert torch.equal(inverse, expected_inverse)
    assert torch.equal(unique[inverse], points)


def test_unique_rows_stops_once_the_leading_columns_tell_rows_apart():
    # distinct first column (continuous labels): later columns cannot change the order
    gen = _gen(9)
    points = torch.cat([torch.randn(2000, 1, generator=gen, dtype=torch.float64),
                        torch.randint(0, 3, (2000, 4), generator=gen).double()], 1)
    points = torch.cat([points, points[:300]])  # and some repeated rows
    unique, inverse = _unique_rows(points)
    expected, expected_inverse = torch.unique(points, dim=0, return_inverse=True)
    assert torch.equal(unique, expected)
    assert torch.equal(inverse, expected_inverse)
