"""Multi-session solver: one encoder per session, one shared embedding space."""

from __future__ import annotations

import torch
from torch import nn

from cebra_pipe.data.datatypes import MultiSessionBatch
from cebra_pipe.solver.base import Solver
from cebra_pipe.solver.registry import register


@register("multi-session")
class MultiSessionSolver(Solver):
    """Pairs each session's references with positives encoded by another session's model.

    Negatives of all sessions share one denominator, so every reference is
    contrasted with ``sessions x batch_size`` negatives.
    """

    def __init__(self, model: nn.ModuleList, *args, **kwargs):
        if not isinstance(model, nn.ModuleList):
            raise TypeError("The multi-session solver needs an nn.ModuleList with one "
                            "encoder per session.")
        super().__init__(model, *args, **kwargs)

    def compute_loss(self, batch: MultiSessionBatch):
        batch = batch.to(self.device)
        refs, poss, negs = [], [], []
        for encoder, session in zip(self.model, batch.batches):
            size = len(session.reference)
            emb = self.embed(encoder, session.stacked("reference", "positive", "negative"))
            refs.append(emb[:size])
            poss.append(emb[size:2 * size])
            negs.append(emb[2 * size:])
        positive = torch.cat([poss[target] for target in batch.permutation])
        return self.criterion(torch.cat(refs), positive, torch.cat(negs))

    def encoder(self, session_id: int | None = None) -> nn.Module:
        """Session ``session_id``'s encoder (required: each session has its own)."""
        if session_id is None:
            raise ValueError(f"This model was trained on {len(self.model)} sessions: pass "
                             f"session_id (0..{len(self.model) - 1}).")
        if not 0 <= int(session_id) < len(self.model):
            raise ValueError(f"session_id={session_id} is out of range for "
                             f"{len(self.model)} sessions (0..{len(self.model) - 1}).")
        return self.model[int(session_id)]

    def evaluation_loss(self, batch, session_id: int | None = None) -> torch.Tensor:
        """The loss of a multi-session batch (``session_id`` None), or of one session's
        single-session batch embedded by that session's encoder."""
        if session_id is None:
            return self.compute_loss(batch)[0]
        return self.session_loss(self.encoder(session_id), batch)[0]
