"""Solvers: the training loop around a model, a criterion and an optimiser.

What belongs here: the step (loss, backward, optimiser step), loss history and log,
checkpoints and resuming (:mod:`.base`), the per-mode losses (single-session, hybrid,
multi-session), training several seeds in lock-step (:mod:`.ensemble`), loss
regularisers (:mod:`.regularizers`), devices and progress output. Solvers take
batches from :mod:`cebra_pipe.data` loaders and never see arrays or estimators.

Extending: subclass :class:`Solver`, implement ``compute_loss(batch) -> (loss,
align, uniform)`` (and ``evaluation_loss`` if scoring differs from training), and
register it with ``@register("name")``; ``init("name", model=..., criterion=...,
optimizer=...)`` builds it. Public seams used by the estimator and metrics:
``encoder(session_id)``, ``session_loss``, ``score_batches``, ``transform``.
"""

from cebra_pipe.solver.base import (Solver, TrainingDivergedError, newest_checkpoint,
                                    transform_recording)
from cebra_pipe.solver.device import resolve_device
from cebra_pipe.solver.ensemble import EnsembleSolver
from cebra_pipe.solver.multi_session import MultiSessionSolver
from cebra_pipe.solver.registry import get_options, init, register
from cebra_pipe.solver.single_session import SingleSessionHybridSolver, SingleSessionSolver

__all__ = ["EnsembleSolver", "MultiSessionSolver", "SingleSessionHybridSolver",
           "SingleSessionSolver", "Solver", "TrainingDivergedError", "get_options", "init",
           "newest_checkpoint", "register", "resolve_device", "transform_recording"]
