"""Solvers for one recording: plain and hybrid (behaviour + time)."""

from __future__ import annotations

import torch

from cebra_pipe.data.datatypes import Batch, FullBatch
from cebra_pipe.solver.base import Solver, slides_over_recording  # noqa: F401 - public here too
from cebra_pipe.solver.registry import register


@register("single-session")
class SingleSessionSolver(Solver):
    """Reference, positive and negative windows go through the model in one pass.

    A full batch (:class:`~cebra_pipe.data.datatypes.FullBatch`) with a sliding
    model embeds the recording once instead and gathers the rows of the batch.
    """

    def compute_loss(self, batch: Batch | FullBatch):
        return self.session_loss(self.model, batch)


@register("single-session-hybrid")
class SingleSessionHybridSolver(SingleSessionSolver):
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

    def evaluation_loss(self, batch: Batch, session_id: int | None = None) -> torch.Tensor:
        """The behaviour loss only, so hybrid models are judged on their labels like
        behaviour models."""
        return self.session_loss(self.model, batch)[0]
