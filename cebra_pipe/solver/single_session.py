"""Solvers for one recording: plain and hybrid (behaviour + time)."""

from __future__ import annotations

import torch
from torch import nn

from cebra_pipe.data.datatypes import Batch, FullBatch
from cebra_pipe.solver.base import Solver, transform_recording
from cebra_pipe.solver.registry import register


def slides_over_recording(model: nn.Module) -> bool:
    """Whether embedding a whole recording at once equals embedding every window.

    True for convolutional models with one output per time step (``subsample ==
    1``) without active dropout: dropout draws one mask per input, so a shared
    recording would correlate the masks of overlapping windows.
    """
    if getattr(model, "subsample", None) != 1:
        return False
    return not (model.training and any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
                                       for m in model.modules()))


@register("single-session")
class SingleSessionSolver(Solver):
    """Reference, positive and negative windows go through the model in one pass.

    A full batch (:class:`~cebra_pipe.data.datatypes.FullBatch`) with a sliding
    model embeds the recording once instead and gathers the rows of the batch.
    """

    def compute_loss(self, batch: Batch | FullBatch):
        batch = batch.to(self.device)
        if isinstance(batch, FullBatch) and self._can_slide(batch):
            ref, pos, neg = self.embed_full_batch(self.model, batch)
        else:
            windows, size = _batch_windows(batch)
            emb = self.embed(self.model, windows)
            ref, pos, neg = emb[:size], emb[size:2 * size], emb[2 * size:]
        return self.criterion(ref, pos, neg)

    def _can_slide(self, batch: FullBatch) -> bool:
        get_offset = getattr(self.model, "get_offset", None)
        return (slides_over_recording(self.model) and get_offset is not None
                and get_offset() == batch.offset)

    def embed_full_batch(self, encoder: nn.Module, batch: FullBatch
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reference, positive and negative embeddings ``(batch, num_output)`` each.

        The encoder runs once over ``batch.neural (time, neurons)`` (``time -
        len(offset) + 1`` outputs, row ``i`` is time ``i + offset.left``); gathering
        rows keeps the gradient path to every window that is used.
        """
        emb = transform_recording(encoder, batch.neural, pad=False, batch_size=None,
                                  autocast=self._autocast)
        left = batch.offset.left
        index = batch.index
        return emb[index.reference - left], emb[index.positive - left], emb[index.negative - left]


def _batch_windows(batch: Batch | FullBatch) -> tuple[torch.Tensor, int]:
    """Reference, positive and negative windows ``(3 x batch, neurons, window)``, and batch."""
    # A FullBatch cuts its windows on access: count the indices, not windows.
    size = len(batch.index.reference if isinstance(batch, FullBatch) else batch.reference)
    return batch.stacked("reference", "positive", "negative"), size


@register("single-session-hybrid")
class SingleSessionHybridSolver(Solver):
    """Sum of a behaviour-contrastive and a time-contrastive loss on one embedding."""

    def compute_loss(self, batch: Batch):
        if batch.positive_time is None:
            raise ValueError("The hybrid solver needs batches with time positives "
                             "(use HybridDataLoader).")
        batch = batch.to(self.device)
        size = len(batch.reference)
        emb = self.embed(self.model, batch.stacked("reference", "positive", "positive_time",
                                                   "negative"))
        ref, pos, pos_time, neg = emb.split(size)
        loss_b, align_b, uniform_b = self.criterion(ref, pos, neg)
        loss_t, align_t, uniform_t = self.criterion(ref, pos_time, neg)
        return loss_b + loss_t, align_b + align_t, uniform_b + uniform_t
