"""Solvers for one recording: plain and hybrid (behaviour + time)."""

from __future__ import annotations

import torch

from cebra_pipe.data.datatypes import Batch
from cebra_pipe.solver.base import Solver
from cebra_pipe.solver.registry import register


@register("single-session")
class SingleSessionSolver(Solver):
    """Reference, positive and negative windows go through the model in one pass."""

    def compute_loss(self, batch: Batch):
        batch = batch.to(self.device)
        size = len(batch.reference)
        emb = self.embed(self.model, torch.cat([batch.reference, batch.positive,
                                                batch.negative]))
        ref, pos, neg = emb[:size], emb[size:2 * size], emb[2 * size:]
        return self.criterion(ref, pos, neg)


@register("single-session-hybrid")
class SingleSessionHybridSolver(Solver):
    """Sum of a behaviour-contrastive and a time-contrastive loss on one embedding."""

    def compute_loss(self, batch: Batch):
        if batch.positive_time is None:
            raise ValueError("The hybrid solver needs batches with time positives "
                             "(use HybridDataLoader).")
        batch = batch.to(self.device)
        size = len(batch.reference)
        emb = self.embed(self.model, torch.cat([batch.reference, batch.positive,
                                                batch.positive_time, batch.negative]))
        ref, pos, pos_time, neg = emb.split(size)
        loss_b, align_b, uniform_b = self.criterion(ref, pos, neg)
        loss_t, align_t, uniform_t = self.criterion(ref, pos_time, neg)
        return loss_b + loss_t, align_b + align_t, uniform_b + uniform_t
