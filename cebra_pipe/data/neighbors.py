"""Exact nearest-label search, built once per fit, so a sampling step costs O(batch).

The reference implementation compares every query with every time point at every
step (O(batch x time)). Here labels are deduplicated once, then searched with a
structure chosen by dimension and device (:func:`choose_structure`):

* ``"sorted"``: 1-D labels, ``torch.searchsorted`` on the sorted values;
* ``"groups"``: continuous columns next to categorical ones (``[position, right,
  left]``): one exact search over the continuous columns per combination of
  categorical values;
* ``"kdtree"``: several continuous columns on the CPU, scipy's ``cKDTree`` (exact;
  faster than the blocked search on one CPU thread from 70 points on, 2-20-D);
* ``"blocked"``: several continuous columns on an accelerator: distances by matrix
  products in blocks of queries, the candidates within the product's rounding
  error of the closest re-checked in float64, so rounding never changes the answer.

Every search is exact: it returns a point at the smallest Euclidean distance
(computed in float64). Between distinct points at exactly the same distance the
choice is fixed, independent of the seed: the lower value in 1-D and the
lexicographically smallest label in the ``kdtree`` and ``blocked`` searches (ties
between categorical groups go to the first group). Among time points sharing the
nearest label one is drawn uniformly with the index's generator.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.spatial
import torch

_BLOCK_ENTRIES = 2 ** 24  # (query, point) distances evaluated at once
_TIE_MARGIN = 1e-9  # relative gap below which two k-d tree distances may be a tie
_MAX_CATEGORIES = 16  # a column with at most this many distinct values is categorical
_MAX_GROUPS = 64  # split by the categorical columns when they form at most this many groups


def choose_structure(dim: int, device: torch.device) -> str:
    """The search for distinct continuous points of ``dim`` columns on ``device``.

    Categorical columns are split off before (see :class:`NearestNeighbors`).
    """
    if dim == 1:
        return "sorted"
    return "kdtree" if torch.device(device).type == "cpu" else "blocked"


class NearestNeighbors:
    """Index of ``points (n, d)``; :meth:`query` returns the row of the nearest point.

    Among several rows with the same (nearest) value one is drawn uniformly with
    ``generator``, so a recording where the animal rests does not always pick the
    first resting sample.

    Attributes
    ----------
    structure : ``"sorted"``, ``"groups"``, ``"kdtree"`` or ``"blocked"``
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
        self.groups: list[tuple[torch.Tensor, NearestNeighbors]] = []
        self.flat: _FlatGroups | None = None
        self.search: _KDTreeSearch | _BlockedSearch | None = None
        if self.dim > 1 and len(unique) > 64:
            self._split_categorical(generator)
        if self.groups:
            self.structure = "groups"
        else:
            self.structure = choose_structure(self.dim, unique.device)
            if self.structure != "sorted":
                self.search = _SEARCHES[self.structure](self.unique)

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
        return self.search.nearest(targets)

    def _split_categorical(self, generator: torch.Generator) -> None:
        """One index over the continuous columns per combination of categorical ones.

        Labels such as ``[position, right, left]`` mix a continuous column with
        binary ones. A target off the binary lattice (``right = -1`` after adding an
        observed change) is a whole unit away from every point, which a spatial search
        at the position's scale can only answer by visiting nearly every point. Within
        one combination of categorical values their contribution to the distance is
        a constant, so the nearest point overall is the nearest of the per-group
        nearest points, each found by an exact search over the continuous columns.
        """
        categorical = [j for j in range(self.dim) if _is_categorical(self.unique[:, j])]
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


class _KDTreeSearch:
    """scipy's ``cKDTree`` over distinct CPU points ``(m, d)``.

    The tree returns the two nearest points; where their distances are within
    :data:`_TIE_MARGIN` (a tie, or one up to the tree's rounding) every point in
    that radius is re-checked in float64 and the lowest index wins.
    """

    def __init__(self, points: torch.Tensor):
        points = np.ascontiguousarray(points.detach().cpu().double().numpy())
        # Sliding-midpoint splits (balanced_tree=False) build and answer 8-20-D random
        # walks 1.2-1.5x faster than median splits. The tree reads points through an
        # index array; storing them in its leaf order makes each leaf one contiguous
        # block (1.5x faster queries at 1M points, 20-D); the rebuilt tree is the same.
        self.order = scipy.spatial.cKDTree(points, balanced_tree=False).indices
        self.points = points[self.order]
        self.tree = scipy.spatial.cKDTree(self.points, balanced_tree=False, copy_data=False)
        self.order = torch.from_numpy(self.order.astype(np.int64))

    def nearest(self, targets: torch.Tensor) -> torch.Tensor:
        """Index of the nearest point to each of ``targets (b, d)``, on their device."""
        query = targets.detach().cpu().double().numpy()
        if len(query) == 0:
            return torch.zeros(0, dtype=torch.long, device=targets.device)
        distance, index = self.tree.query(query, k=2)
        nearest = self.order[torch.from_numpy(index[:, 0].astype(np.int64))]
        close = np.flatnonzero(distance[:, 1] <= distance[:, 0] * (1 + _TIE_MARGIN))
        if len(close):
            radius = distance[close, 0] * (1 + 2 * _TIE_MARGIN)
            balls = self.tree.query_ball_point(query[close], radius)
            owner = np.repeat(np.arange(len(close)), [len(b) for b in balls])
            candidate = torch.from_numpy(
                np.concatenate([np.asarray(b, dtype=np.int64) for b in balls]))
            nearest[close] = _lowest_closest(torch.from_numpy(self.points),
                                             torch.from_numpy(query[close]),
                                             torch.from_numpy(owner), candidate,
                                             self.order[candidate])
        return nearest.to(targets.device)


class _BlockedSearch:
    """Distances from blocks of queries to all distinct points ``(m, d)`` by matrix
    products, on the points' device.

    The products run in the points' dtype on centred coordinates; their rounding
    error is bounded (:meth:`_error_bound`), so every point whose approximate
    distance is within twice that bound of the smallest one is re-checked in
    float64: the exact nearest is always among them.
    """

    def __init__(self, points: torch.Tensor):
        self.exact = points.double()
        self.centre = self.exact.mean(0)
        self.points = (self.exact - self.centre).to(points.dtype)
        self.sq_norms = (self.points * self.points).sum(1)
        self.max_sq_norm = float(self.sq_norms.max()) if len(points) else 0.0

    def nearest(self, targets: torch.Tensor) -> torch.Tensor:
        """Index of the nearest point to each of ``targets (b, d)``."""
        exact = targets.to(self.exact.device, torch.float64)
        rows = max(1, _BLOCK_ENTRIES // max(1, len(self.points)))
        found = [self._nearest_block(block) for block in exact.split(rows)]
        return torch.cat(found) if found else torch.zeros(0, dtype=torch.long,
                                                          device=self.exact.device)

    def _nearest_block(self, exact: torch.Tensor) -> torch.Tensor:
        centred = (exact - self.centre).to(self.points.dtype)
        sq_norms = (centred * centred).sum(1)
        # a caller's autocast would run the product in half precision
        with torch.autocast(self.points.device.type, enabled=False):
            approx = torch.addmm(self.sq_norms, centred, self.points.T, alpha=-2)
        approx += sq_norms[:, None]
        # the exact nearest is at most one error above its approximation, which is at
        # most the smallest approximation plus one error
        limit = approx.min(1).values.double() + 2 * self._error_bound(sq_norms)
        owner, candidate = torch.nonzero(approx <= limit[:, None].to(approx.dtype),
                                         as_tuple=True)
        return _lowest_closest(self.exact, exact, owner, candidate)

    def _error_bound(self, sq_norms: torch.Tensor) -> torch.Tensor:
        """Bound on the rounding error of the approximate squared distances ``(b,)``.

        The product's error is at most ``(2 d + 4) eps (|t|^2 + |p|^2)`` (dot
        products and norms of length ``d``), rounding the centred coordinates to
        the product's dtype adds ``4 eps (|t|^2 + |p|^2)`` and rounding the limit
        one more ``eps``; twice that, for safety.
        """
        eps = torch.finfo(self.points.dtype).eps
        if self.points.dtype == torch.float32:
            # TF32 or bfloat16 products when the user allowed them
            eps = max(eps, {"highest": eps, "high": 2.0 ** -10,
                            "medium": 2.0 ** -7}[torch.get_float32_matmul_precision()])
        d = self.points.shape[1]
        return 2 * (2 * d + 10) * eps * (sq_norms.double() + self.max_sq_norm)


_SEARCHES = {"kdtree": _KDTreeSearch, "blocked": _BlockedSearch}


def _lowest_closest(points: torch.Tensor, targets: torch.Tensor, owner: torch.Tensor,
                    candidate: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Per target, the lowest id of the candidates at the smallest float64 distance.

    Parameters
    ----------
    points : (m, d) float64
    targets : (b, d) float64
    owner, candidate : (pairs,) target and point index of each candidate pair;
        every target owns at least one pair.
    ids : (pairs,) what to compare and return for each pair; ``candidate`` if None.
    """
    ids = candidate if ids is None else ids
    dist = ((points[candidate] - targets[owner]) ** 2).sum(1)
    best = torch.full((len(targets),), math.inf, dtype=dist.dtype, device=dist.device)
    best = best.scatter_reduce(0, owner, dist, "amin")
    lowest = torch.full((len(targets),), len(points), dtype=torch.long, device=dist.device)
    at_best = dist == best[owner]
    return lowest.scatter_reduce(0, owner[at_best], ids[at_best], "amin")


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


def _is_categorical(column: torch.Tensor) -> bool:
    """Whether ``column (n,)`` has at most ``_MAX_CATEGORIES`` distinct values."""
    # a leading slice with more settles it without sorting the whole column
    for part in (column[:4096], column):
        if len(torch.unique(part)) > _MAX_CATEGORIES:
            return False
    return True


def _unique_rows(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted distinct rows of ``points (n, d)`` and each row's position among them.

    ``torch.unique(dim=0)`` is ~20x slower than the flat one, so the rows are ranked
    column by column instead: each step folds one more column's rank into an integer
    key (``key * cardinality + rank`` stays below ``n^2``) and re-ranks it. Ranks keep
    the order of values, so the result is in the same lexicographic order. Once the
    leading columns tell all rows apart they alone set that order, so the rest are
    skipped (continuous labels: 2 of 20 columns ranked).
    """
    key = None
    for column in points.T:
        values, rank = torch.unique(column, return_inverse=True)
        if key is None:
            key = rank
        else:
            key = torch.unique(key * len(values) + rank, return_inverse=True)[1]
        if len(key) == 0 or int(key.max()) + 1 == len(points):
            break
    num_unique = int(key.max()) + 1 if len(key) else 0
    unique = points.new_empty(num_unique, points.shape[1])
    unique[key] = points  # equal rows share a key: any of them is the representative
    return unique, key
