"""Exact nearest-label search, built once per fit, so a sampling step costs O(batch).

The reference implementation compares every query with every time point at every
step (O(batch x time)). Here labels are deduplicated once; 1-D labels are then
searched with ``torch.searchsorted`` and multi-dimensional labels with a uniform
hierarchy of uniform grids (the finest keeps a few points per occupied cell, each
next one is 2x coarser). A query looks at the 3^d cells around it; the answer is
provably exact when the nearest candidate is within one cell width (nothing
outside the block can be closer); otherwise the query moves to the next coarser
grid, and the rare queries far from all data end in a scan of those rows only.
"""

from __future__ import annotations

import itertools
import math

import torch

_TARGET_OCCUPANCY = 4  # unique points per occupied grid cell
_MAX_GRID_DIMS = 6  # 3^6 = 729 neighbour cells; beyond that a grid stops paying off
_LEVEL_RATIO = 2  # width ratio of successive grids
_MIN_CELLS = 16  # a grid with fewer occupied cells costs as much as a scan
_PAIR_BUDGET = 2 ** 22  # (query, candidate) pairs evaluated at once
_BRUTE_FORCE_CHUNK = 2 ** 24  # distance-matrix entries evaluated at once
_MAX_CATEGORIES = 16  # a column with at most this many distinct values is categorical
_MAX_GROUPS = 64  # split by the categorical columns when they form at most this many groups


class NearestNeighbors:
    """Index of ``points (n, d)``; :meth:`query` returns the row of the nearest point.

    Among several rows with the same (nearest) value one is drawn uniformly with
    ``generator``, so a recording where the animal rests does not always pick the
    first resting sample.
    """

    def __init__(self, points: torch.Tensor, generator: torch.Generator):
        if points.dim() == 1:
            points = points[:, None]
        self.generator = generator
        unique, inverse = _unique_rows(points)
        self.unique = unique.contiguous()
        self.members = torch.argsort(inverse, stable=True)
        self.counts = torch.bincount(inverse, minlength=len(unique))
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.dim = points.shape[1]
        self.grids: list[_Grid] = []
        self.groups: list[tuple[torch.Tensor, NearestNeighbors]] = []
        self.flat: _FlatGroups | None = None
        if self.dim > 1 and len(unique) > 64:
            self._split_categorical(generator)
        if not self.groups and 1 < self.dim <= _MAX_GRID_DIMS and len(unique) > 64:
            self._build_grid()

    def query(self, targets: torch.Tensor) -> torch.Tensor:
        """Rows ``(b,)`` of the points nearest to ``targets (b, d)`` (Euclidean)."""
        if targets.dim() == 1:
            targets = targets[:, None]
        return self._draw_member(self._nearest_unique(targets))

    def _nearest_unique(self, targets: torch.Tensor) -> torch.Tensor:
        """Index into ``unique`` of the nearest unique point to each of ``targets (b, d)``."""
        if self.groups:
            return self._nearest_by_group(targets)
        if self.dim == 1:
            return self._nearest_sorted(targets[:, 0])
        if self.grids:
            return self._nearest_grid(targets)
        return self._nearest_brute_force(targets)

    def _split_categorical(self, generator: torch.Generator) -> None:
        """One index over the continuous columns per combination of categorical ones.

        Labels such as ``[position, right, left]`` mix a continuous column with
        binary ones. A target off the binary lattice (``right = -1`` after adding an
        observed change) is a whole unit away from every point, which a cubic grid
        fine enough for the position can only answer by scanning everything. Within
        one combination of categorical values their contribution to the distance is
        a constant, so the nearest point overall is the nearest of the per-group
        nearest points, each found by an exact search over the continuous columns.
        """
        categorical = [j for j in range(self.dim)
                       if len(torch.unique(self.unique[:, j])) <= _MAX_CATEGORIES]
        continuous = [j for j in range(self.dim) if j not in categorical]
        if not categorical or not continuous:
            return
        keys, group_of = _unique_rows(self.unique[:, categorical])
        if len(keys) > _MAX_GROUPS:
            return
        self.continuous_columns = torch.tensor(continuous, device=self.unique.device)
        self.categorical_columns = torch.tensor(categorical, device=self.unique.device)
        self.group_keys = keys
        for g in range(len(keys)):
            rows = torch.nonzero(group_of == g).flatten()
            # rows are unique and share their categorical values: the continuous parts
            # are unique too, so each sub-index entry is exactly one of ``rows``
            sub = NearestNeighbors(self.unique[rows][:, self.continuous_columns], generator)
            self.groups.append((rows[sub.members[sub.starts]], sub))
        if len(continuous) == 1:
            self.flat = _FlatGroups([(rows, sub.unique[:, 0]) for rows, sub in self.groups])

    def _nearest_by_group(self, targets: torch.Tensor) -> torch.Tensor:
        """Search the group whose categorical values are closest first, then only the
        groups whose categorical distance alone still beats the best point found."""
        lower = ((targets[:, None, self.categorical_columns] - self.group_keys) ** 2).sum(-1)
        first = lower.argmin(1)
        if self.flat is not None:
            return self._nearest_by_flat_group(targets, lower, first)
        sub_targets = targets[:, self.continuous_columns]
        best = torch.zeros(len(targets), dtype=torch.long, device=targets.device)
        best_dist = torch.full((len(targets),), math.inf, dtype=targets.dtype,
                               device=targets.device)
        for initial in (True, False):
            for g, (rows, sub) in enumerate(self.groups):
                select = first == g if initial else (first != g) & (lower[:, g] < best_dist)
                which = torch.nonzero(select).flatten()
                if len(which) == 0:
                    continue
                found = rows[sub._nearest_unique(sub_targets[which])]
                dist = ((self.unique[found] - targets[which]) ** 2).sum(1)
                better = dist < best_dist[which]
                best[which[better]] = found[better]
                best_dist[which[better]] = dist[better]
        return best

    def _nearest_by_flat_group(self, targets: torch.Tensor, lower: torch.Tensor,
                               first: torch.Tensor) -> torch.Tensor:
        """:meth:`_nearest_by_group` for one continuous column, without a loop over groups.

        The same answer (ties go to the first group in the loop's order), in a fixed
        number of tensor operations: the loop cost ~2.7 ms per step with 20 groups.
        """
        value = targets[:, self.continuous_columns[0]]
        best = self.flat.nearest(value, first)
        best_dist = ((self.unique[best] - targets) ** 2).sum(1)
        groups = torch.arange(lower.shape[1], device=lower.device)
        query, group = torch.nonzero((lower < best_dist[:, None])
                                     & (groups != first[:, None]), as_tuple=True)
        if len(query) == 0:
            return best
        found = self.flat.nearest(value[query], group)
        dist = ((self.unique[found] - targets[query]) ** 2).sum(1)
        better = dist < best_dist[query]
        query, found, dist = query[better], found[better], dist[better]
        least = best_dist.scatter_reduce(0, query, dist, "amin")
        win = dist == least[query]
        query, found = query[win], found[win]
        # pairs come sorted by (query, group): the first winner of a query is the
        # lowest group, the one the loop keeps (it only replaces on strictly better)
        keep = torch.ones_like(query, dtype=torch.bool)
        keep[1:] = query[1:] != query[:-1]
        best[query[keep]] = found[keep]
        return best

    def _draw_member(self, unique_index: torch.Tensor) -> torch.Tensor:
        count = self.counts[unique_index]
        draw = torch.rand(unique_index.shape, generator=self.generator,
                          device=unique_index.device)
        within = (draw * count).long().clamp_max(count - 1)
        return self.members[self.starts[unique_index] + within]

    def _nearest_sorted(self, targets: torch.Tensor) -> torch.Tensor:
        values = self.unique[:, 0]  # torch.unique sorts ascending
        right = torch.searchsorted(values, targets.contiguous()).clamp_max(len(values) - 1)
        return _closer(values, targets, (right - 1).clamp_min(0), right)

    def _nearest_brute_force(self, targets: torch.Tensor) -> torch.Tensor:
        rows = max(1, _BRUTE_FORCE_CHUNK // max(1, len(self.unique)))
        return torch.cat([torch.cdist(chunk, self.unique).argmin(1)
                          for chunk in targets.split(rows)])

    def _build_grid(self) -> None:
        """Grids from fine to coarse while a grid still splits the points into many cells."""
        points = self.unique
        origin = points.min(0).values
        span = float((points.max(0).values - origin).max())
        width = _choose_width(points, origin, span)
        self.grids = []
        while width < 2 * span:
            grid = _Grid(points, origin, width)
            if len(grid.cell_ids) < _MIN_CELLS:
                break
            self.grids.append(grid)
            width *= _LEVEL_RATIO

    def _nearest_grid(self, targets: torch.Tensor) -> torch.Tensor:
        nearest = torch.full((len(targets),), -1, dtype=torch.long, device=targets.device)
        unsure = torch.arange(len(targets), device=targets.device)
        for grid in self.grids:
            found, exact = grid.query(self.unique, targets[unsure])
            nearest[unsure] = found
            unsure = unsure[~exact]
            if len(unsure) == 0:
                return nearest
        nearest[unsure] = self._nearest_brute_force(targets[unsure])
        return nearest


class _Grid:
    """Points sorted by the id of their cubic cell of side ``width``."""

    def __init__(self, points: torch.Tensor, origin: torch.Tensor, width: float):
        self.origin, self.width = origin, width
        coords = ((points - origin) / width).floor().long()
        self.shape = coords.max(0).values + 1
        self.strides = _strides(self.shape)
        ids = (coords * self.strides).sum(1)
        self.cell_ids, self.cell_counts = torch.unique(ids, return_counts=True)
        self.cell_starts = torch.cumsum(self.cell_counts, 0) - self.cell_counts
        self.by_cell = torch.argsort(ids, stable=True)
        self.offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=points.shape[1])),
                                    device=points.device)

    def query(self, points: torch.Tensor,
              targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest candidate in the 3^d neighbouring cells of each target, and exactness.

        Returns ``(nearest (b,), exact (b,))``: ``exact`` where the candidate is closer
        than one cell width, since anything outside the block is at least that far.
        """
        num_queries, num_offsets = len(targets), len(self.offsets)
        neighbours = ((targets - self.origin) / self.width).floor().long()[:, None, :] \
            + self.offsets
        inside = ((neighbours >= 0) & (neighbours < self.shape)).all(-1).flatten()
        ids = (neighbours.clamp_min(0) * self.strides).sum(-1).flatten()
        slot = torch.searchsorted(self.cell_ids, ids).clamp_max(len(self.cell_ids) - 1)
        counts = torch.where(inside & (self.cell_ids[slot] == ids), self.cell_counts[slot], 0)
        if num_queries > 1 and int(counts.sum()) > _PAIR_BUDGET:
            half = num_queries // 2
            (near_a, exact_a), (near_b, exact_b) = (self.query(points, targets[:half]),
                                                    self.query(points, targets[half:]))
            return torch.cat([near_a, near_b]), torch.cat([exact_a, exact_b])
        owner = torch.repeat_interleave(torch.arange(len(ids), device=ids.device), counts)
        within = torch.arange(len(owner), device=ids.device) \
            - (torch.cumsum(counts, 0) - counts)[owner]
        candidate = self.by_cell[self.cell_starts[slot[owner]] + within]
        query = owner // num_offsets
        dist = ((points[candidate] - targets[query]) ** 2).sum(1)
        best = torch.full((num_queries,), math.inf, device=targets.device,
                          dtype=dist.dtype).scatter_reduce(0, query, dist, "amin")
        is_best = dist == best[query]
        nearest = torch.full((num_queries,), 0, device=targets.device, dtype=torch.long)
        nearest = nearest.scatter_reduce(0, query[is_best], candidate[is_best], "amax")
        return nearest, best <= self.width ** 2


class _FlatGroups:
    """Sorted 1-D values of several groups searched in one ``searchsorted``.

    Each value is replaced by its rank among all groups' values and keyed as
    ``group * (n + 1) + rank``: integer keys, sorted by group then value, with no
    rounding however large the labels are.

    Parameters
    ----------
    groups
        ``(rows, values)`` per group: ascending distinct ``values (k,)`` and the
        ``rows (k,)`` they answer with.
    """

    def __init__(self, groups: list[tuple[torch.Tensor, torch.Tensor]]):
        values = torch.cat([v for _, v in groups])
        self.rows = torch.cat([r for r, _ in groups])
        self.values = values
        self.all_values = torch.unique(values)  # sorted
        self.base = len(self.all_values) + 1
        sizes = torch.tensor([len(v) for _, v in groups], device=values.device)
        self.ends = torch.cumsum(sizes, 0)
        self.starts = self.ends - sizes
        group_of = torch.repeat_interleave(torch.arange(len(groups), device=values.device),
                                           sizes)
        self.keys = group_of * self.base + torch.searchsorted(self.all_values, values)

    def nearest(self, value: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Row of the value nearest to each ``value (b,)`` within its ``group (b,)``."""
        rank = torch.searchsorted(self.all_values, value.contiguous())
        right = torch.searchsorted(self.keys, group * self.base + rank)
        right = torch.minimum(right, self.ends[group] - 1)
        left = torch.maximum(right - 1, self.starts[group])
        return self.rows[_closer(self.values, value, left, right)]


def _closer(values: torch.Tensor, targets: torch.Tensor, left: torch.Tensor,
            right: torch.Tensor) -> torch.Tensor:
    """``left`` or ``right`` per target, whichever ``values`` entry is nearer (ties: left)."""
    take_left = (targets - values[left]).abs() <= (values[right] - targets).abs()
    return torch.where(take_left, left, right)


def _choose_width(points: torch.Tensor, origin: torch.Tensor, span: float) -> float:
    """Bisect (log scale) the cell width giving ~_TARGET_OCCUPANCY points per cell."""
    low, high = math.log(span * 1e-7), math.log(span)
    for _ in range(20):
        mid = 0.5 * (low + high)
        coords = ((points - origin) / math.exp(mid)).floor().long()
        shape = coords.max(0).values + 1
        if math.prod(shape.tolist()) > 2 ** 62:
            low = mid
            continue
        cells = len(torch.unique((coords * _strides(shape)).sum(1)))
        low, high = (mid, high) if len(points) / cells < _TARGET_OCCUPANCY else (low, mid)
    return math.exp(high)


def _unique_rows(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct rows of ``points (n, d)`` and each row's position among them.

    ``torch.unique(dim=0)`` is ~20x slower than the flat one, so the rows are ranked
    column by column instead: each step folds one more column's rank into an integer
    key (``key * cardinality + rank`` stays below ``n^2``) and re-ranks it. Ranks keep
    the order of values, so the result is in the same lexicographic order.
    """
    key = None
    for column in points.T:
        values, rank = torch.unique(column, return_inverse=True)
        if key is None:
            key = rank
        else:
            key = torch.unique(key * len(values) + rank, return_inverse=True)[1]
    num_unique = int(key.max()) + 1 if len(key) else 0
    unique = points.new_empty(num_unique, points.shape[1])
    unique[key] = points  # equal rows share a key: any of them is the representative
    return unique, key


def _strides(shape: torch.Tensor) -> torch.Tensor:
    """Row-major strides of a grid of ``shape (d,)`` for linear cell ids."""
    strides = torch.ones_like(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides
