"""InfoNCE criteria for contrastive learning.

For references ``r_i``, their positives ``p_i`` and negatives ``n_j`` (all
``(batch, dim)``), and a similarity ``sim`` scaled by the temperature ``T``::

    loss = mean_i [ -sim(r_i, p_i) / T + logsumexp_j sim(r_i, n_j) / T ]
         =         align               +   uniform

The positive is deliberately not part of the denominator (CEBRA's variant), so the
loss of a model at chance is ``log(num_negatives)``.

The uniform term needs all ``n x m`` similarities. For large batches (full-batch
training on a long recording) they are never stored: :func:`uniform_term` goes
through the references in row chunks, so memory grows as ``(n + m) * dim``, not
``n * m``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from cebra_pipe.registry import Registry

_registry = Registry("criterion")
register = _registry.register
get_options = _registry.get_options
init = _registry.init

#: From this many reference x negative pairs on (a batch of 1024), the uniform term is
#: computed in chunks on accelerators. Smaller batches keep the one dense ``(n, m)``
#: matrix, which on a GPU costs fewer kernel launches.
CHUNKED_MIN_PAIRS = 2**20
#: The same on the CPU (a batch of 256). Measured forward + backward at batch 512:
#: 1.0 ms chunked against 2.2 ms dense on one thread; at 128 both take 0.3 ms.
CHUNKED_MIN_PAIRS_CPU = 2**16
#: Bytes of one chunk of similarities ``(rows, m)`` on a CPU with one torch thread:
#: small enough to stay in cache while the chunk is reduced (fastest at 5k and 50k).
CHUNK_BYTES = 2**20
#: The same with several torch threads. Each of the ~6 operations per chunk then
#: opens a parallel region, whose fixed cost (on a busy machine, waiting for a
#: descheduled thread: milliseconds) must be spread over more work than a cache.
CHUNK_BYTES_THREADED = 2**24
#: The same on accelerators, where each chunk costs kernel launches instead.
CHUNK_BYTES_ACCELERATOR = 2**27


def cosine_similarity(ref: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Dot products ``(n, m)`` of (already normalised) embeddings ``(n, d)``, ``(m, d)``."""
    return ref @ other.T


def neg_squared_euclidean(ref: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Negative squared distances ``(n, m)`` between rows of ``ref`` and ``other``."""
    ref_sq = (ref * ref).sum(1, keepdim=True)
    other_sq = (other * other).sum(1)
    return -(ref_sq - 2 * ref @ other.T + other_sq)


def paired_cosine(ref: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products ``(n,)`` of ``ref`` and ``pos`` ``(n, d)``."""
    return (ref * pos).sum(1)


def paired_neg_squared_euclidean(ref: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Row-wise negative squared distances ``(n,)`` of ``ref`` and ``pos`` ``(n, d)``."""
    return -((ref - pos) ** 2).sum(1)


def _cosine_factors(ref: torch.Tensor, other: torch.Tensor, inverse_temperature
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``a (n, k)``, ``b (m, k)``, ``shift`` with ``sim / T = a @ b.T (+ shift[:, None])``."""
    return ref * inverse_temperature, other, None


def _euclidean_factors(ref: torch.Tensor, other: torch.Tensor, inverse_temperature
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Same as :func:`_cosine_factors` for the negative squared distance.

    ``-|r - o|^2 = (2 r . o - |o|^2) - |r|^2``: the bracket is one dot product of
    ``[2 r, 1]`` with ``[o, -|o|^2]``, and ``-|r|^2`` is constant along a row, so it
    moves out of the logsumexp as ``shift``.
    """
    ones = ref.new_ones(len(ref), 1)
    a = torch.cat([2 * ref, ones], 1) * inverse_temperature
    b = torch.cat([other, -(other * other).sum(1, keepdim=True)], 1)
    return a, b, -(ref * ref).sum(1) * inverse_temperature


_FACTORS = {cosine_similarity: _cosine_factors, neg_squared_euclidean: _euclidean_factors}


def takes_chunks(num_pairs: int, device: torch.device) -> bool:
    """Whether a uniform term over ``num_pairs`` pairs on ``device`` is chunked."""
    limit = CHUNKED_MIN_PAIRS_CPU if device.type == "cpu" else CHUNKED_MIN_PAIRS
    return num_pairs >= limit


def _chunk_rows(like: torch.Tensor, num_columns: int) -> int:
    """Rows per chunk so that one ``(rows, num_columns)`` block of ``like``'s dtype
    takes the budget for its device and thread count (see ``CHUNK_BYTES``)."""
    if like.device.type != "cpu":
        budget = CHUNK_BYTES_ACCELERATOR
    else:
        budget = CHUNK_BYTES if torch.get_num_threads() == 1 else CHUNK_BYTES_THREADED
    return max(1, budget // max(1, num_columns * like.element_size()))


class _ChunkedMeanLogSumExp(torch.autograd.Function):
    """``mean_i logsumexp_j a_i . b_j`` without ever holding more than one chunk of rows.

    The output is a mean, so its gradient is known up to the incoming scalar: the
    forward pass accumulates it from the softmax of each chunk while that chunk is at
    hand, and the backward pass only scales it. Nothing of size ``(n, m)`` is kept,
    and each ``exp`` is evaluated once.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, rows: int) -> torch.Tensor:
        need_a, need_b = ctx.needs_input_grad[:2]
        n, k = a.shape
        b_t = b.T.contiguous()
        # Per-chunk sums, added up at the end: torch's pairwise sum stays accurate over
        # thousands of chunks where a running float32 total would drift.
        chunk_sums = a.new_empty(-(-n // rows))
        # Gradients are accumulated transposed, (k, n) and (k, m): with k ~ 10 columns
        # the skinny products run several times faster in this orientation.
        grad_a_t = a.new_empty(k, n) if need_a else None
        grad_b_t = b.new_zeros(k, len(b)) if need_b else None
        for chunk, start in enumerate(range(0, n, rows)):
            a_chunk = a[start:start + rows]
            logits = a_chunk @ b_t
            top = logits.amax(1)
            prob = torch.softmax(logits, 1)
            del logits
            # softmax_ij = exp(l_ij - lse_i) peaks at j = argmax l_ij, which gives lse_i.
            chunk_sums[chunk] = (top - prob.amax(1).log()).sum()
            # d lse_i / d a_i = sum_j softmax_ij b_j and d lse_i / d b_j = softmax_ij a_i
            if need_a:
                torch.mm(b_t, prob.T, out=grad_a_t[:, start:start + rows])
            if need_b:
                grad_b_t.addmm_(a_chunk.T, prob)
        ctx.save_for_backward(None if grad_a_t is None else grad_a_t.T / n,
                              None if grad_b_t is None else grad_b_t.T / n)
        return chunk_sums.sum() / n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        grad_a, grad_b = ctx.saved_tensors
        return (None if grad_a is None else grad_a * grad,
                None if grad_b is None else grad_b * grad, None)


def uniform_term(ref: torch.Tensor, other: torch.Tensor,
                 inverse_temperature: torch.Tensor | float, similarity=cosine_similarity,
                 chunk_rows: int | None = None) -> torch.Tensor:
    """``mean_i logsumexp_j similarity(r_i, o_j) / T`` in memory linear in ``n + m``.

    Parameters
    ----------
    ref : (n, d)
        References.
    other : (m, d)
        Negatives.
    inverse_temperature
        ``1 / T``; a tensor receives gradients.
    similarity
        :func:`cosine_similarity` or :func:`neg_squared_euclidean`.
    chunk_rows
        References per chunk; by default a chunk of similarities takes
        ``CHUNK_BYTES`` (one CPU thread), ``CHUNK_BYTES_THREADED`` (several) or
        ``CHUNK_BYTES_ACCELERATOR`` (GPU).

    Returns
    -------
    scalar
        Equal to ``torch.logsumexp(similarity(ref, other) / T, 1).mean()`` with the
        same gradients, but the ``(n, m)`` similarities exist one chunk at a time.
    """
    if similarity not in _FACTORS:
        raise ValueError(f"uniform_term supports {sorted(f.__name__ for f in _FACTORS)}, "
                         f"got {getattr(similarity, '__name__', similarity)!r}.")
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    a, b, shift = _FACTORS[similarity](ref, other, inverse_temperature)
    rows = int(chunk_rows) if chunk_rows is not None else _chunk_rows(a, len(b))
    uniform = _ChunkedMeanLogSumExp.apply(a.contiguous(), b.contiguous(), rows)
    return uniform if shift is None else uniform + shift.mean()


def dot_similarity(ref: torch.Tensor, pos: torch.Tensor,
                   neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarities for :func:`infonce`: ``ref . pos (n,)`` and ``ref . neg (n, m)``.

    ``ref``, ``pos`` are ``(n, d)``, ``neg`` is ``(m, d)``; for unit-norm embeddings
    these are cosine similarities.
    """
    return paired_cosine(ref, pos), cosine_similarity(ref, neg)


def euclidean_similarity(ref: torch.Tensor, pos: torch.Tensor,
                         neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative squared distances ``(n,)`` to the positives and ``(n, m)`` to the
    negatives, for :func:`infonce`."""
    return paired_neg_squared_euclidean(ref, pos), neg_squared_euclidean(ref, neg)


def infonce(pos_sim: torch.Tensor, neg_sim: torch.Tensor,
            inverse_temperature: torch.Tensor | float = 1.0) -> tuple[torch.Tensor, ...]:
    """Loss from similarities; ``pos_sim (n,)``, ``neg_sim (n, m)``.

    Returns ``(loss, align, uniform)``, scalars. ``torch.logsumexp`` subtracts the
    row maximum internally, so large inverse temperatures do not overflow.
    """
    align = -(pos_sim * inverse_temperature).mean()
    uniform = torch.logsumexp(neg_sim * inverse_temperature, dim=1).mean()
    return align + uniform, align, uniform


class _InfoNCE(nn.Module):
    """Shared forward of all criteria; subclasses pick similarity and temperature."""

    similarity = staticmethod(cosine_similarity)
    paired_similarity = staticmethod(paired_cosine)

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        self._temperature = float(temperature)

    @property
    def temperature(self) -> float:
        return self._temperature

    def inverse_temperature(self) -> torch.Tensor | float:
        return 1.0 / self._temperature

    def forward(self, ref: torch.Tensor, pos: torch.Tensor,
                neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loss, align, uniform)`` for embeddings ``ref``, ``pos`` ``(n, d)``, ``neg (m, d)``.

        From ``CHUNKED_MIN_PAIRS`` pairs on (``CHUNKED_MIN_PAIRS_CPU`` on the CPU) the
        uniform term is computed in chunks (:func:`uniform_term`), with the same value
        and gradients.
        """
        inverse_temperature = self.inverse_temperature()
        pos_sim = self.paired_similarity(ref, pos)
        if (not takes_chunks(len(ref) * len(neg), ref.device)
                or self.similarity not in _FACTORS):
            return infonce(pos_sim, self.similarity(ref, neg), inverse_temperature)
        align = -(pos_sim * inverse_temperature).mean()
        uniform = uniform_term(ref, neg, inverse_temperature, self.similarity)
        return align + uniform, align, uniform


class _LearnableTemperature(_InfoNCE):
    """Learns ``log(1/T)``; the temperature never falls below ``min_temperature``."""

    def __init__(self, temperature: float = 1.0, min_temperature: float | None = None):
        super().__init__(temperature)
        if min_temperature is not None and not min_temperature > 0:
            raise ValueError(f"min_temperature must be > 0, got {min_temperature}.")
        self.min_temperature = min_temperature
        self.log_inverse_temperature = nn.Parameter(torch.tensor(-math.log(temperature)))

    def inverse_temperature(self) -> torch.Tensor:
        log_inv = self.log_inverse_temperature
        if self.min_temperature is not None:
            log_inv = log_inv.clamp(max=-math.log(self.min_temperature))
        return log_inv.exp()

    @property
    def temperature(self) -> float:
        return float(1.0 / self.inverse_temperature().detach())


@register("infonce-cosine")
class FixedCosineInfoNCE(_InfoNCE):
    """InfoNCE on cosine similarity with a fixed temperature."""


@register("infonce-euclidean")
class FixedEuclideanInfoNCE(_InfoNCE):
    """InfoNCE on negative squared Euclidean distance with a fixed temperature."""

    similarity = staticmethod(neg_squared_euclidean)
    paired_similarity = staticmethod(paired_neg_squared_euclidean)


@register("infonce-cosine-learnable")
class LearnableCosineInfoNCE(_LearnableTemperature):
    """InfoNCE on cosine similarity with a learnable temperature."""


@register("infonce-euclidean-learnable")
class LearnableEuclideanInfoNCE(_LearnableTemperature):
    """InfoNCE on negative squared Euclidean distance with a learnable temperature."""

    similarity = staticmethod(neg_squared_euclidean)
    paired_similarity = staticmethod(paired_neg_squared_euclidean)


InfoNCE = FixedCosineInfoNCE
InfoMSE = FixedEuclideanInfoNCE
